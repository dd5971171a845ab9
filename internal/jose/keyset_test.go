package jose

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-cognito/caddy-cognito/internal/jose/josetest"
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

// stepClock is a clock that moves only when the test steps it, so a
// cool-down is tested at its exact edge whatever the machine's load.
type stepClock struct {
	mu  sync.Mutex
	now time.Time
}

func newStepClock() *stepClock { return &stepClock{now: time.Unix(1_800_000_000, 0)} }

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *stepClock) Step(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Names of josetest's helpers as these tests use them.
type testKey = josetest.Key

var (
	newTestIssuer = josetest.NewIssuer
	testRSAKey    = josetest.RSAKey
	signRS256     = josetest.SignRS256
	mustJSON      = josetest.MustJSON
	b64url        = josetest.B64URL
)

// tokenErrOf returns err as a *TokenError (nil stays nil), failing the
// test if it is another kind of error.
func tokenErrOf(t testing.TB, err error) *TokenError {
	t.Helper()
	var te *TokenError
	if err != nil && !errors.As(err, &te) {
		t.Fatalf("error %v (%T) is not a *TokenError", err, err)
	}
	return te
}

// testKeySet returns a fresh KeySet on ti's JWKS after its first fetch;
// it is destroyed when the test ends.
func testKeySet(tb testing.TB, ti *josetest.Issuer, opts KeySetOptions) *KeySet {
	tb.Helper()
	ks := NewKeySet(ti.JWKSURL, opts)
	tb.Cleanup(func() { _ = ks.Destruct() }) // always nil: it is a caddy.Destructor
	select {
	case <-ks.firstDone:
	case <-time.After(5 * time.Second):
		tb.Fatal("first JWKS fetch did not finish")
	}
	return ks
}

// tokenVerifier checks a token's signature the way the root Verifier
// does, for these tests that care only about keys.
type tokenVerifier struct{ ks *KeySet }

func accessVerifier(_ *josetest.Issuer, ks *KeySet) tokenVerifier { return tokenVerifier{ks} }

func (v tokenVerifier) Verify(ctx context.Context, token string) ([]byte, error) {
	payload, terr := VerifyJWS(ctx, v.ks, token, DefaultMaxTokenSize)
	if terr != nil {
		return nil, terr
	}
	return payload, nil
}

func TestKeySetUnknownKidRefetchOncePerCooldown(t *testing.T) {
	ti := newTestIssuer(t)
	clock := newStepClock()
	ks := testKeySet(t, ti, KeySetOptions{Cooldown: 5 * time.Minute, Now: clock.Now})
	v := accessVerifier(ti, ks)
	if got := ti.Requests(); got != 1 {
		t.Fatalf("requests after start = %d, want 1", got)
	}
	if a := ti.LastAccept(); a != "application/json" {
		t.Errorf("Accept = %q", a)
	}
	ghost := signRS256(testRSAKey(t, 2048, "ghost"), []byte(`{"alg":"RS256","kid":"ghost"}`), mustJSON(t, ti.AccessClaims(nil)))
	for i := range 5 {
		if _, err := v.Verify(context.Background(), ghost); err == nil || tokenErrOf(t, err).Reason != "unknown signing key" {
			t.Fatalf("try %d: %v", i, err)
		}
	}
	if got := ti.Requests(); got != 2 {
		t.Fatalf("requests after 5 unknown kids = %d, want 2", got)
	}
	clock.Step(5*time.Minute - time.Nanosecond)
	_, _ = v.Verify(context.Background(), ghost)
	if got := ti.Requests(); got != 2 {
		t.Fatalf("requests just inside the cool-down = %d, want 2", got)
	}
	clock.Step(time.Nanosecond)
	_, _ = v.Verify(context.Background(), ghost) // only to trigger a fetch, counted below
	if got := ti.Requests(); got != 3 {
		t.Fatalf("requests after the cool-down = %d, want 3", got)
	}
}

func TestKeySetConcurrentUnknownKidsShareOneFetch(t *testing.T) {
	ti := newTestIssuer(t)
	ks := testKeySet(t, ti, KeySetOptions{})
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
	ks := testKeySet(t, ti, KeySetOptions{RefreshInterval: 50 * time.Millisecond})
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
	ks := testKeySet(t, ti, KeySetOptions{RefreshInterval: 20 * time.Millisecond, RetryMin: 5 * time.Millisecond})
	v := accessVerifier(ti, ks)
	token := ti.Sign(ti.AccessClaims(nil))
	small, _ := json.Marshal(map[string]any{"keys": []any{testKey{KID: "kid-1", Priv: testRSAKey(t, 1024, "a")}.PublicJWK()}})
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

func TestKeySetGoOIDCInterop(t *testing.T) {
	ti := newTestIssuer(t)
	ks := testKeySet(t, ti, KeySetOptions{})
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
		return testKey{KID: kid, Priv: testRSAKey(t, 2048, "a"), JWK: o}.PublicJWK()
	}
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecJWK, err := jwk.Import(ecKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	if err := ecJWK.Set(jwk.KeyIDKey, "ec"); err != nil {
		t.Fatal(err)
	}
	n := testRSAKey(t, 2048, "a").N.Bytes()
	n[len(n)-1] &^= 1
	evenModulus := base64.RawURLEncoding.EncodeToString(n)
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
		{"small RSA skipped", []any{testKey{KID: "s", Priv: testRSAKey(t, 1024, "a")}.PublicJWK()}, nil},
		// What crypto/rsa would refuse to verify with, refused when loaded.
		{"exponent 1 skipped", []any{rsaJWK("a", map[string]any{"e": "AQ"})}, nil},
		{"even exponent skipped", []any{rsaJWK("a", map[string]any{"e": "AQAA"})}, nil},
		{"even modulus skipped", []any{rsaJWK("a", map[string]any{"n": evenModulus}), rsaJWK("b", nil)}, []string{"b"}},
		{"exponent above 2^31-1 skipped", []any{rsaJWK("a", map[string]any{"e": "gAAAAQ"})}, nil},
		// Preparing a modulus costs the square of its size: a huge one is
		// refused before any work.
		{"modulus over 4096 bits skipped", []any{rsaJWK("a", map[string]any{"n": base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0xff}, 513))}), rsaJWK("b", nil)}, []string{"b"}},
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
				if keys[kid] == nil || keys[kid].n.BitLen() < 2048 {
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
	ks := testKeySet(t, ti, KeySetOptions{RefreshInterval: 20 * time.Millisecond, RetryMin: 20 * time.Millisecond, Logger: zap.New(core)})
	v := accessVerifier(ti, ks)
	good := ti.Sign(ti.AccessClaims(nil))
	ghost := signRS256(testRSAKey(t, 2048, "ghost"), []byte(`{"alg":"RS256","kid":"ghost"}`), mustJSON(t, ti.AccessClaims(nil)))
	ti.SetStatus(503)
	waitFor(t, "a failed refresh", func() bool { return ks.failing.Load() })
	if _, err := v.Verify(context.Background(), good); err != nil {
		t.Fatalf("known key refused while the JWKS is down: %v", err)
	}
	if _, err := v.Verify(context.Background(), ghost); err == nil || !tokenErrOf(t, err).Unavailable {
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
	if _, err := v.Verify(context.Background(), ghost); err == nil || tokenErrOf(t, err).Unavailable {
		t.Fatalf("unknown kid after recovery: %v, want a plain refusal", err)
	}
}

func TestKeySetZeroValueFailsClosed(t *testing.T) {
	ti := newTestIssuer(t)
	_, err := accessVerifier(ti, &KeySet{}).Verify(context.Background(), ti.Sign(ti.AccessClaims(nil)))
	if err == nil || !tokenErrOf(t, err).Unavailable {
		t.Fatalf("got %v, want Unavailable", err)
	}
}

// TestKeyRedirectPolicy: a redirect is followed only where the caller's
// rule allows, never without a rule, and never past five hops.
func TestKeyRedirectPolicy(t *testing.T) {
	httpsOnly := func(raw string) error {
		if !strings.HasPrefix(raw, "https://") {
			return errors.New("not https")
		}
		return nil
	}
	for target, ok := range map[string]bool{
		"https://keys.example.com/jwks.json": true,
		"http://keys.example.com/jwks.json":  false,
		"file:///etc/passwd":                 false,
	} {
		req, _ := http.NewRequest("GET", target, nil)
		if err := keyRedirectPolicy(httpsOnly)(req, nil); (err == nil) != ok {
			t.Errorf("redirect to %s: err = %v", target, err)
		}
	}
	req, _ := http.NewRequest("GET", "https://keys.example.com/", nil)
	if err := keyRedirectPolicy(httpsOnly)(req, make([]*http.Request, 5)); err == nil {
		t.Error("sixth redirect followed")
	}
	if err := keyRedirectPolicy(nil)(req, nil); err == nil {
		t.Error("redirect followed without a rule")
	}
	// The default client is the one that applies the rule.
	if (KeySetOptions{}).withDefaults().Client.CheckRedirect(req, nil) == nil {
		t.Error("default client follows redirects without a rule")
	}
}

// TestKeySetDestructStops: Destruct ends the refresh loop and every fetch,
// even one the JWKS never answers, and a destroyed set fetches no more.
func TestKeySetDestructStops(t *testing.T) {
	ti := newTestIssuer(t)
	ks := testKeySet(t, ti, KeySetOptions{RefreshInterval: 10 * time.Millisecond})
	ti.SetDelay(time.Hour)
	waitFor(t, "a hanging refresh", func() bool { return ti.Requests() >= 2 })
	done := make(chan struct{})
	go func() { _ = ks.Destruct(); close(done) }() // always nil
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("refresh goroutine still running after Destruct")
	}
	if ks.ctx.Err() == nil {
		t.Fatal("context not cancelled")
	}
	n := ti.Requests()
	if call := ks.fetchShared(); call.err == nil {
		t.Fatal("a destroyed key set started a fetch")
	}
	time.Sleep(30 * time.Millisecond)
	if ti.Requests() != n {
		t.Fatal("a destroyed key set still fetches")
	}
}
