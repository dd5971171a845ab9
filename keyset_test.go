package caddycognito

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func accessVerifier(ti *testIssuer, ks *KeySet) *Verifier {
	return NewVerifier(ks, VerifierConfig{Issuer: ti.URL, ClientIDs: []string{ti.ClientID}, TokenUse: "access", CacheSize: -1})
}

func TestKeySetUnknownKidRefetchOncePerCooldown(t *testing.T) {
	ti := newTestIssuer(t)
	ks := ti.KeySet(t, keySetOptions{Cooldown: 300 * time.Millisecond})
	v := accessVerifier(ti, ks)
	if got := ti.Requests(); got != 1 {
		t.Fatalf("requests after start = %d, want 1", got)
	}
	if a, _ := ti.accept.Load().(string); a != "application/json" {
		t.Errorf("Accept = %q", a)
	}
	ghost := signRS256(testRSAKey(t, 2048, "ghost"), []byte(`{"alg":"RS256","kid":"ghost"}`), mustJSON(t, ti.AccessClaims(nil)))
	for i := range 5 {
		if _, err := v.Verify(context.Background(), ghost); err == nil || err.(*TokenError).Reason != "unknown signing key" {
			t.Fatalf("try %d: %v", i, err)
		}
	}
	if got := ti.Requests(); got != 2 {
		t.Fatalf("requests after 5 unknown kids = %d, want 2", got)
	}
	time.Sleep(350 * time.Millisecond)
	v.Verify(context.Background(), ghost)
	if got := ti.Requests(); got != 3 {
		t.Fatalf("requests after the cool-down = %d, want 3", got)
	}
}

func TestKeySetConcurrentUnknownKidsShareOneFetch(t *testing.T) {
	ti := newTestIssuer(t)
	ks := ti.KeySet(t, keySetOptions{})
	v := accessVerifier(ti, ks)
	ti.Rotate() // published, not yet fetched
	ti.SetDelay(100 * time.Millisecond)
	rotated := ti.Sign(ti.AccessClaims(nil))
	ghost := signRS256(testRSAKey(t, 2048, "ghost"), []byte(`{"alg":"RS256","kid":"ghost"}`), mustJSON(t, ti.AccessClaims(nil)))

	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if i%10 == 0 {
				if _, err := v.Verify(context.Background(), ghost); err == nil {
					errs <- errors.New("ghost kid accepted")
				}
				return
			}
			if _, err := v.Verify(context.Background(), rotated); err != nil {
				errs <- err
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := ti.Requests(); got != 2 {
		t.Fatalf("requests = %d, want 2 (start + one shared refetch)", got)
	}
}

func TestKeySetRotationPickedUpByRefresh(t *testing.T) {
	ti := newTestIssuer(t)
	ks := ti.KeySet(t, keySetOptions{RefreshInterval: 50 * time.Millisecond})
	kid := ti.Rotate()
	waitFor(t, "the rotated key", func() bool {
		m := ks.current.Load()
		return m != nil && m.keys[kid] != nil
	})
	if _, err := accessVerifier(ti, ks).Verify(context.Background(), ti.Sign(ti.AccessClaims(nil))); err != nil {
		t.Fatal(err)
	}
}

func TestKeySetFailuresKeepKeys(t *testing.T) {
	ti := newTestIssuer(t)
	ks := ti.KeySet(t, keySetOptions{RefreshInterval: 20 * time.Millisecond, RetryMin: 5 * time.Millisecond})
	v := accessVerifier(ti, ks)
	token := ti.Sign(ti.AccessClaims(nil))
	small, _ := json.Marshal(map[string]any{"keys": []any{testKey{KID: "kid-1", Priv: testRSAKey(t, 1024, "a")}.jwk()}})
	failures := []struct {
		name   string
		status int
		body   []byte
	}{
		{"HTTP 500", 500, nil},
		{"HTTP 404", 404, nil},
		{"invalid JSON", 0, []byte(`{"keys":[`)},
		{"not JSON", 0, []byte(`<html>`)},
		{"no keys", 0, []byte(`{"keys":[]}`)},
		{"only a small key", 0, small},
		{"too large", 0, []byte(`{"keys":[],"pad":"` + strings.Repeat("x", maxJWKSBody) + `"}`)},
	}
	for _, f := range failures {
		t.Run(f.name, func(t *testing.T) {
			ti.SetStatus(f.status)
			ti.SetBody(f.body)
			n := ti.Requests()
			waitFor(t, "two failed refreshes", func() bool { return ti.Requests() >= n+2 })
			if _, err := v.Verify(context.Background(), token); err != nil {
				t.Fatalf("old key lost: %v", err)
			}
			ti.SetStatus(0)
			ti.SetBody(nil)
		})
	}
}

func TestKeySetUnreachableAtStart(t *testing.T) {
	// A port nobody listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String() + "/.well-known/jwks.json"
	l.Close()

	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	began := time.Now()
	ks, err := acquireKeySet(ctx, url)
	if err != nil {
		t.Fatalf("acquire failed: %v", err)
	}
	defer releaseKeySet(url)
	if d := time.Since(began); d > defaultFirstFetchWait+time.Second {
		t.Fatalf("acquire took %s", d)
	}
	ti := newTestIssuer(t)
	_, err = accessVerifier(ti, ks).Verify(context.Background(), ti.Sign(ti.AccessClaims(nil)))
	var te *TokenError
	if !errors.As(err, &te) || !te.Unavailable {
		t.Fatalf("want an Unavailable error, got %v", err)
	}
}

func TestKeySetSlowFirstFetchBoundsAcquire(t *testing.T) {
	ti := newTestIssuer(t)
	ti.SetDelay(time.Hour) // a JWKS that never answers
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	began := time.Now()
	ks, err := acquireKeySet(ctx, ti.JWKSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer releaseKeySet(ti.JWKSURL)
	if d := time.Since(began); d < defaultFirstFetchWait/2 || d > defaultFirstFetchWait+time.Second {
		t.Fatalf("acquire took %s, want about %s", d, defaultFirstFetchWait)
	}
	if ks.current.Load() != nil {
		t.Fatal("keys without a fetch")
	}
}

func TestKeySetUsagePoolSharesAndStops(t *testing.T) {
	ti := newTestIssuer(t)
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	a, err := acquireKeySet(ctx, ti.JWKSURL)
	if err != nil {
		t.Fatal(err)
	}
	b, err := acquireKeySet(ctx, ti.JWKSURL)
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Fatal("two key sets for one URL")
	}
	if ti.Requests() != 1 {
		t.Fatalf("requests = %d, want 1", ti.Requests())
	}
	if a.current.Load() == nil {
		t.Fatal("no keys after acquire")
	}
	releaseKeySet(ti.JWKSURL)
	if a.ctx.Err() != nil {
		t.Fatal("stopped while still in use")
	}
	releaseKeySet(ti.JWKSURL)
	if a.ctx.Err() == nil {
		t.Fatal("still running after the last release")
	}
	done := make(chan struct{})
	go func() { a.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("refresh goroutine still running after Destruct")
	}
	if _, ok := keySetPool.References(ti.JWKSURL); ok {
		t.Fatal("pool still holds the key set")
	}
	// A new acquire after the last release starts afresh.
	c, err := acquireKeySet(ctx, ti.JWKSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer releaseKeySet(ti.JWKSURL)
	if c == a {
		t.Fatal("destroyed key set handed out again")
	}
}

func TestKeySetGoOIDCInterop(t *testing.T) {
	ti := newTestIssuer(t)
	ks := ti.KeySet(t, keySetOptions{})
	ov := oidc.NewVerifier(ti.URL, ks, &oidc.Config{ClientID: ti.ClientID})
	idTok, err := ov.Verify(context.Background(), ti.Sign(ti.IDClaims(nil)))
	if err != nil {
		t.Fatalf("go-oidc refused a good ID token: %v", err)
	}
	var claims struct {
		Username string `json:"cognito:username"`
	}
	if err := idTok.Claims(&claims); err != nil || claims.Username != "alice" || idTok.Subject == "" {
		t.Fatalf("claims %+v, %v", claims, err)
	}
	bad := []string{
		signRS256(testRSAKey(t, 2048, "attacker"), []byte(`{"alg":"RS256","kid":"kid-1"}`), mustJSON(t, ti.IDClaims(nil))),
		ti.SignWith(map[string]any{"alg": "RS256", "kid": "kid-1", "jku": "https://evil.example"}, ti.IDClaims(nil)),
		ti.Sign(ti.IDClaims(map[string]any{"aud": "someone-else"})),
	}
	for i, tok := range bad {
		if _, err := ov.Verify(context.Background(), tok); err == nil {
			t.Errorf("bad token %d accepted", i)
		}
	}
}

func TestParseJWKS(t *testing.T) {
	rsaJWK := func(kid string, o map[string]any) map[string]any {
		return testKey{KID: kid, Priv: testRSAKey(t, 2048, "a"), JWK: o}.jwk()
	}
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecJWK, err := jwk.Import(ecKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	ecJWK.Set(jwk.KeyIDKey, "ec")
	cases := []struct {
		name string
		keys []any
		want []string
	}{
		{"plain", []any{rsaJWK("a", nil)}, []string{"a"}},
		{"no use or alg", []any{rsaJWK("a", map[string]any{"use": nil, "alg": nil})}, []string{"a"}},
		{"enc key skipped", []any{rsaJWK("a", map[string]any{"use": "enc"}), rsaJWK("b", nil)}, []string{"b"}},
		{"other alg skipped", []any{rsaJWK("a", map[string]any{"alg": "RS512"}), rsaJWK("b", map[string]any{"alg": "PS256"})}, nil},
		{"no kid skipped", []any{rsaJWK("", nil)}, nil},
		{"EC key skipped", []any{ecJWK, rsaJWK("b", nil)}, []string{"b"}},
		{"unknown kty skipped", []any{map[string]any{"kty": "XYZ", "kid": "x"}, rsaJWK("b", nil)}, []string{"b"}},
		{"symmetric skipped", []any{map[string]any{"kty": "oct", "kid": "s", "k": "c2VjcmV0"}}, nil},
		{"small RSA skipped", []any{testKey{KID: "s", Priv: testRSAKey(t, 1024, "a")}.jwk()}, nil},
		{"duplicate kid dropped", []any{rsaJWK("a", nil), rsaJWK("a", nil), rsaJWK("b", nil)}, []string{"b"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			doc, _ := json.Marshal(map[string]any{"keys": tc.keys})
			keys, _, err := parseJWKS(doc)
			if err != nil {
				t.Fatal(err)
			}
			if len(keys) != len(tc.want) {
				t.Fatalf("got %d keys, want %v", len(keys), tc.want)
			}
			for _, kid := range tc.want {
				if keys[kid] == nil || keys[kid].N.BitLen() < 2048 {
					t.Errorf("missing %q", kid)
				}
			}
		})
	}
	if _, _, err := parseJWKS([]byte(`[1,2]`)); err == nil {
		t.Error("array accepted as a key set")
	}
}

func TestKeySetUnknownKidWhileFailingIsUnavailable(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	ti := newTestIssuer(t)
	ks := ti.KeySet(t, keySetOptions{RefreshInterval: 20 * time.Millisecond, RetryMin: 20 * time.Millisecond, Logger: zap.New(core)})
	v := accessVerifier(ti, ks)
	good := ti.Sign(ti.AccessClaims(nil))
	ghost := signRS256(testRSAKey(t, 2048, "ghost"), []byte(`{"alg":"RS256","kid":"ghost"}`), mustJSON(t, ti.AccessClaims(nil)))
	ti.SetStatus(503)
	waitFor(t, "a failed refresh", func() bool { return ks.failing.Load() })
	if _, err := v.Verify(context.Background(), good); err != nil {
		t.Fatalf("known key refused while the JWKS is down: %v", err)
	}
	if _, err := v.Verify(context.Background(), ghost); err == nil || !err.(*TokenError).Unavailable {
		t.Fatalf("unknown kid while the JWKS is down: %v, want Unavailable", err)
	}
	warns := logs.FilterLevelExact(zap.WarnLevel).All()
	if len(warns) == 0 {
		t.Fatal("no warning logged for the failing JWKS")
	}
	if f := warns[0].ContextMap(); f["jwks_url"] != ti.JWKSURL || f["have_keys"] != true {
		t.Errorf("warning fields %v", f)
	}
	for _, e := range logs.All() {
		for _, v := range e.ContextMap() {
			if s := fmt.Sprint(v); strings.Contains(s, b64url(ti.Signer().Priv.N.Bytes())[:40]) {
				t.Errorf("key material in log entry %q", e.Message)
			}
		}
	}
	ti.SetStatus(0)
	waitFor(t, "recovery", func() bool { return !ks.failing.Load() })
	if _, err := v.Verify(context.Background(), ghost); err == nil || err.(*TokenError).Unavailable {
		t.Fatalf("unknown kid after recovery: %v, want a plain refusal", err)
	}
}

func TestKeySetZeroValueFailsClosed(t *testing.T) {
	ti := newTestIssuer(t)
	_, err := accessVerifier(ti, &KeySet{}).Verify(context.Background(), ti.Sign(ti.AccessClaims(nil)))
	if err == nil || !err.(*TokenError).Unavailable {
		t.Fatalf("got %v, want Unavailable", err)
	}
}

func TestKeyRedirectPolicy(t *testing.T) {
	for target, ok := range map[string]bool{
		"https://keys.example.com/jwks.json": true,
		"http://127.0.0.1:9229/p/jwks.json":  true,
		"http://keys.example.com/jwks.json":  false,
		"file:///etc/passwd":                 false,
	} {
		req, _ := http.NewRequest("GET", target, nil)
		if err := checkKeyRedirect(req, nil); (err == nil) != ok {
			t.Errorf("redirect to %s: err = %v", target, err)
		}
	}
	req, _ := http.NewRequest("GET", "https://keys.example.com/", nil)
	if err := checkKeyRedirect(req, make([]*http.Request, 5)); err == nil {
		t.Error("sixth redirect followed")
	}
}
