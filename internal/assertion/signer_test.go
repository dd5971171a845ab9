package assertion

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/caddy-cognito/caddy-cognito/internal/identity"
)

// The tests verify with jwx, an independent JOSE implementation: what
// they accept, a standard verifier accepts.

func newKey(t *testing.T) *ecdsa.PrivateKey { return benchKey(t) }

func benchKey(tb testing.TB) *ecdsa.PrivateKey {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// clock is a settable test clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newSigner(t *testing.T, cfg Config) *Signer {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// verify checks tok against the published set of s as a relying party
// would: signature by a published kid, iss, aud, exp at now.
func verify(t *testing.T, published []byte, tok, iss, aud string, now time.Time) (jwt.Token, error) {
	t.Helper()
	set, err := jwk.Parse(published)
	if err != nil {
		t.Fatal(err)
	}
	return jwt.Parse([]byte(tok), jwt.WithKeySet(set), jwt.WithIssuer(iss), jwt.WithAudience(aud),
		jwt.WithClock(jwt.ClockFunc(func() time.Time { return now })))
}

var alice = newAlice(func(*identity.Identity) {})

// newAlice is a signed-in user, changed by change.
func newAlice(change func(*identity.Identity)) *identity.Identity {
	id := &identity.Identity{
		Pool: "main", Subject: "cognito-sub-1", Username: "alice", Email: "alice@example.com", EmailVerified: true,
		Groups: []string{"admins", "Straße,ops"}, UserID: "u_123", Roles: []string{"editor"},
	}
	change(id)
	return id
}

func TestAssertionClaims(t *testing.T) {
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	s := newSigner(t, Config{Keys: []*ecdsa.PrivateKey{newKey(t)}, Now: c.now})
	tok, err := s.Assertion(Site{HTTPS: true, Host: "app.example.com"}, alice)
	if err != nil {
		t.Fatal(err)
	}
	jt, err := verify(t, s.JWKS(), tok, "https://app.example.com", "app.example.com", c.t)
	if err != nil {
		t.Fatalf("jwx refuses the assertion: %v", err)
	}
	var got map[string]any
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	if err := json.Unmarshal(payload, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"iss": "https://app.example.com", "aud": "app.example.com", "sub": "u_123",
		"iat": float64(1_800_000_000), "exp": float64(1_800_000_060),
		"username": "alice", "email": "alice@example.com", "email_verified": true,
		"groups": []any{"admins", "Straße,ops"}, "roles": []any{"editor"}, "pool": "main",
	}
	for k, v := range want {
		if gv, _ := json.Marshal(got[k]); string(gv) != string(must(json.Marshal(v))) {
			t.Errorf("claim %s = %s; want %v", k, gv, v)
		}
	}
	if jti, _ := got["jti"].(string); len(jti) < 20 {
		t.Errorf("jti %q is too short to be unique", jti)
	}
	if len(got) != len(want)+1 {
		t.Errorf("claims %v; want exactly %v and jti", got, want)
	}
	if sub, _ := jt.Subject(); sub != "u_123" {
		t.Errorf("jwx sub = %q", sub)
	}

	// The header names the signing key by its RFC 7638 thumbprint.
	hdr, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	var h map[string]string
	if err := json.Unmarshal(hdr, &h); err != nil {
		t.Fatal(err)
	}
	set, _ := jwk.Parse(s.JWKS())
	k, _ := set.Key(0)
	tp, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if h["alg"] != "ES256" || h["typ"] != "JWT" || h["kid"] != base64.RawURLEncoding.EncodeToString(tp) {
		t.Errorf("header %v; want ES256, JWT and the key's thumbprint as kid", h)
	}

	// Wrong audience, expiry, no email when none is verified, and a
	// configured issuer.
	if _, err := verify(t, s.JWKS(), tok, "https://app.example.com", "other.example.com", c.t); err == nil {
		t.Error("a verifier for another host accepts the token")
	}
	if _, err := verify(t, s.JWKS(), tok, "https://app.example.com", "app.example.com", c.t.Add(61*time.Second)); err == nil {
		t.Error("the token is accepted after exp")
	}
	bare := &identity.Identity{Pool: "main", Subject: "client-1"}
	tok, _ = s.Assertion(Site{Host: "127.0.0.1:8080"}, bare)
	if _, err := verify(t, s.JWKS(), tok, "http://127.0.0.1:8080", "127.0.0.1:8080", c.t); err != nil {
		t.Errorf("plain http site: %v", err)
	}
	payload, _ = base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	if strings.Contains(string(payload), "email") || strings.Contains(string(payload), "groups") {
		t.Errorf("empty claims are sent: %s", payload)
	}
	fixed := newSigner(t, Config{Keys: []*ecdsa.PrivateKey{newKey(t)}, Issuer: "https://id.example.com", Now: c.now})
	tok, _ = fixed.Assertion(Site{HTTPS: true, Host: "app.example.com"}, alice)
	if _, err := verify(t, fixed.JWKS(), tok, "https://id.example.com", "app.example.com", c.t); err != nil {
		t.Errorf("configured issuer: %v", err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestAssertionLifetimeBound(t *testing.T) {
	for _, d := range []time.Duration{MinLifetime, time.Minute, MaxLifetime} {
		if err := CheckLifetime(d); err != nil {
			t.Errorf("%s refused: %v", d, err)
		}
	}
	for _, d := range []time.Duration{-time.Second, time.Second, MaxLifetime + time.Second, time.Hour} {
		if err := CheckLifetime(d); err == nil {
			t.Errorf("%s accepted", d)
		}
		if _, err := New(Config{Keys: []*ecdsa.PrivateKey{newKey(t)}, Lifetime: d}); err == nil {
			t.Errorf("New accepts lifetime %s", d)
		}
	}
	c := &clock{t: time.Unix(1_800_000_000, 900_000_000)}
	s := newSigner(t, Config{Keys: []*ecdsa.PrivateKey{newKey(t)}, Lifetime: MaxLifetime, Now: c.now})
	tok, _ := s.Assertion(Site{Host: "a"}, alice)
	jt, err := verify(t, s.JWKS(), tok, "http://a", "a", c.t)
	if err != nil {
		t.Fatal(err)
	}
	iat, _ := jt.IssuedAt()
	exp, _ := jt.Expiration()
	if got := exp.Sub(iat); got != MaxLifetime {
		t.Errorf("exp - iat = %s; want %s", got, MaxLifetime)
	}
	if iat.After(c.t) {
		t.Errorf("iat %v is after the signing time %v", iat, c.t)
	}
}

func TestAssertionReuseWindow(t *testing.T) {
	start := time.Unix(1_800_000_000, 0)
	c := &clock{t: start}
	s := newSigner(t, Config{Keys: []*ecdsa.PrivateKey{newKey(t)}, Now: c.now})
	site := Site{HTTPS: true, Host: "app.example.com"}
	first, _ := s.Assertion(site, alice)

	// The same identity, even as another *Identity value, and the same site
	// get the same token until half the lifetime has passed.
	copyOfAlice := newAlice(func(id *identity.Identity) { id.Groups = slices.Clone(id.Groups) })
	c.t = start.Add(30*time.Second - time.Nanosecond)
	if again, _ := s.Assertion(site, copyOfAlice); again != first {
		t.Error("the token is not reused within the first half of its lifetime")
	}
	c.t = start.Add(30 * time.Second)
	renewed, _ := s.Assertion(site, alice)
	if renewed == first {
		t.Error("the token is reused with only half its lifetime left")
	}
	if _, err := verify(t, s.JWKS(), renewed, "https://app.example.com", "app.example.com", start.Add(89*time.Second)); err != nil {
		t.Errorf("the renewed token does not last a lifetime from its renewal: %v", err)
	}

	// Every spelling of the site Caddy routes here is the same site.
	for _, host := range []string{"APP.example.com", "app.example.com:443", "App.Example.Com:443"} {
		if tok, _ := s.Assertion(Site{HTTPS: true, Host: host}, alice); tok != renewed {
			t.Errorf("host %q gets another token", host)
		}
	}
	if tok, _ := s.Assertion(Site{Host: "app.example.com:80"}, alice); tok == renewed {
		t.Error("the http site gets the https site's token")
	} else if _, err := verify(t, s.JWKS(), tok, "http://app.example.com", "app.example.com", c.t); err != nil {
		t.Errorf("http site on port 80: %v", err)
	}

	// Anything the token says makes it another token.
	others := map[string]func() (string, error){
		"host":   func() (string, error) { return s.Assertion(Site{HTTPS: true, Host: "b.example.com"}, alice) },
		"scheme": func() (string, error) { return s.Assertion(Site{Host: "app.example.com"}, alice) },
		"groups": func() (string, error) {
			return s.Assertion(site, newAlice(func(id *identity.Identity) { id.Groups = id.Groups[:1] }))
		},
		"roles": func() (string, error) {
			return s.Assertion(site, newAlice(func(id *identity.Identity) { id.Roles = nil }))
		},
		"user": func() (string, error) {
			return s.Assertion(site, newAlice(func(id *identity.Identity) { id.UserID = "u_other" }))
		},
		"email": func() (string, error) {
			return s.Assertion(site, newAlice(func(id *identity.Identity) { id.Email = "" }))
		},
	}
	for name, f := range others {
		tok, err := f()
		if err != nil || tok == renewed {
			t.Errorf("another %s gets the same token (%v)", name, err)
		}
	}
}

// TestAssertionCachedDoesNotAllocate: the reuse path builds no strings.
func TestAssertionCachedDoesNotAllocate(t *testing.T) {
	s := newSigner(t, Config{Keys: []*ecdsa.PrivateKey{newKey(t)}})
	site := Site{HTTPS: true, Host: "app.example.com"}
	first, _ := s.Assertion(site, alice)
	if n := testing.AllocsPerRun(100, func() {
		if tok, _ := s.Assertion(site, alice); tok != first {
			t.Fatal("not reused")
		}
	}); n != 0 {
		t.Errorf("a reused assertion costs %v allocations; want 0", n)
	}
}

func TestAssertionCacheBounded(t *testing.T) {
	s := newSigner(t, Config{Keys: []*ecdsa.PrivateKey{newKey(t)}, CacheSize: 3})
	for _, host := range []string{"a", "b", "c", "d", "e"} {
		if _, err := s.Assertion(Site{Host: host}, alice); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.cache.len(); n != 3 {
		t.Errorf("cache holds %d tokens; bound is 3", n)
	}
}

func TestAssertionRotation(t *testing.T) {
	a, b := newKey(t), newKey(t)
	now := time.Now()
	site := Site{HTTPS: true, Host: "app.example.com"}
	before := newSigner(t, Config{Keys: []*ecdsa.PrivateKey{a}})
	during := newSigner(t, Config{Keys: []*ecdsa.PrivateKey{b, a}})
	after := newSigner(t, Config{Keys: []*ecdsa.PrivateKey{b}})
	fromA, _ := before.Assertion(site, alice)
	fromB, _ := during.Assertion(site, alice)

	if kids := during.KeyIDs(); len(kids) != 2 || kids[0] != after.KeyIDs()[0] || kids[1] != before.KeyIDs()[0] {
		t.Fatalf("key ids %v; want b's then a's", kids)
	}
	ok := func(set []byte, tok, what string) {
		t.Helper()
		if _, err := verify(t, set, tok, "https://app.example.com", "app.example.com", now); err != nil {
			t.Errorf("%s: %v", what, err)
		}
	}
	ok(during.JWKS(), fromA, "a token of the old key against the rotating set")
	ok(during.JWKS(), fromB, "a token of the new key against the rotating set")
	ok(after.JWKS(), fromB, "a token of the new key once the old one is gone")
	if _, err := verify(t, after.JWKS(), fromA, "https://app.example.com", "app.example.com", now); err == nil {
		t.Error("a token of a removed key is accepted")
	}
	if dup := newSigner(t, Config{Keys: []*ecdsa.PrivateKey{a, a}}); len(dup.KeyIDs()) != 1 {
		t.Error("a key listed twice is published twice")
	}
}

// TestAssertionRetiringKeys: a key of a previous secret is published for
// one lifetime after the config is loaded, so that tokens the previous
// config signed with it stay valid to their end, and then it is not,
// so that the holder of a leaked, rotated-out secret cannot forge tokens
// any longer. The current key and the explicit keys stay.
func TestAssertionRetiringKeys(t *testing.T) {
	current, explicitOld, retiring := newKey(t), newKey(t), newKey(t)
	loaded := time.Unix(1_800_000_000, 0)
	c := &clock{t: loaded}
	site := Site{HTTPS: true, Host: "app.example.com"}
	// A token the previous config signed with the retiring key just before
	// the reload, and one forged with it later.
	previous := newSigner(t, Config{Keys: []*ecdsa.PrivateKey{retiring}, Now: c.now})
	beforeReload, _ := previous.Assertion(site, alice)
	s := newSigner(t, Config{Keys: []*ecdsa.PrivateKey{current, explicitOld}, Retiring: []*ecdsa.PrivateKey{retiring}, Now: c.now})
	kidOf := func(k *ecdsa.PrivateKey) string {
		return newSigner(t, Config{Keys: []*ecdsa.PrivateKey{k}}).KeyIDs()[0]
	}
	all := []string{kidOf(current), kidOf(explicitOld), kidOf(retiring)}
	published := func() []string {
		t.Helper()
		w := httptest.NewRecorder()
		s.ServeJWKS(w, httptest.NewRequest(http.MethodGet, "/jwks.json", nil))
		set, err := jwk.Parse(w.Body.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		var kids []string
		for i := range set.Len() {
			k, _ := set.Key(i)
			kid, _ := k.KeyID()
			kids = append(kids, kid)
		}
		if !slices.Equal(kids, s.KeyIDs()) {
			t.Errorf("the served set has %v; KeyIDs says %v", kids, s.KeyIDs())
		}
		return kids
	}
	accepts := func(tok string, at time.Time) bool {
		_, err := verify(t, s.JWKS(), tok, "https://app.example.com", "app.example.com", at)
		return err == nil
	}

	if got := published(); !slices.Equal(got, all) {
		t.Fatalf("at load the set is %v; want current, explicit, retiring %v", got, all)
	}
	c.t = loaded.Add(DefaultLifetime - time.Second)
	if got := published(); !slices.Equal(got, all) {
		t.Errorf("just before one lifetime the set is %v; want %v", got, all)
	}
	if !accepts(beforeReload, c.t) {
		t.Error("a token signed with the previous key before the reload is refused while it is alive")
	}
	c.t = loaded.Add(DefaultLifetime)
	if got := published(); !slices.Equal(got, all[:2]) {
		t.Errorf("one lifetime after load the set is %v; want only current and explicit %v", got, all[:2])
	}
	forged, _ := newSigner(t, Config{Keys: []*ecdsa.PrivateKey{retiring}, Now: c.now}).Assertion(site, alice)
	if accepts(forged, c.t) {
		t.Error("a token signed with the rotated-out secret's key is accepted after its lifetime")
	}
	ownNow, _ := s.Assertion(site, alice)
	if !accepts(ownNow, c.t) {
		t.Error("a token of the current key is refused")
	}

	// A previous secret equal to the current one stays: it is current.
	same := newSigner(t, Config{Keys: []*ecdsa.PrivateKey{current}, Retiring: []*ecdsa.PrivateKey{current, retiring}, Now: c.now})
	c.t = c.t.Add(DefaultLifetime)
	if got := same.KeyIDs(); !slices.Equal(got, all[:1]) {
		t.Errorf("with the current key also retiring the set is %v; want %v", got, all[:1])
	}
	// The window is the configured lifetime.
	short := newSigner(t, Config{Keys: []*ecdsa.PrivateKey{current}, Retiring: []*ecdsa.PrivateKey{retiring}, Lifetime: 5 * time.Second, Now: c.now})
	c.t = c.t.Add(4 * time.Second)
	if len(short.KeyIDs()) != 2 {
		t.Error("a retiring key drops out before one lifetime")
	}
	c.t = c.t.Add(time.Second)
	if len(short.KeyIDs()) != 1 {
		t.Error("a retiring key stays after one lifetime of 5s")
	}
	if _, err := New(Config{Keys: []*ecdsa.PrivateKey{current}, Retiring: []*ecdsa.PrivateKey{nil}}); err == nil {
		t.Error("a nil retiring key is accepted")
	}
}

func TestServeJWKS(t *testing.T) {
	s := newSigner(t, Config{Keys: []*ecdsa.PrivateKey{newKey(t), newKey(t)}})
	w := httptest.NewRecorder()
	s.ServeJWKS(w, httptest.NewRequest(http.MethodGet, "/jwks.json", nil))
	set, err := jwk.Parse(w.Body.Bytes())
	if err != nil || set.Len() != 2 || w.Header().Get("Content-Type") != "application/jwk-set+json" {
		t.Fatalf("GET: %d %q %v", w.Code, w.Body, err)
	}
	for i := range set.Len() {
		k, _ := set.Key(i)
		if _, ok := k.(jwk.ECDSAPrivateKey); ok {
			t.Fatal("the set holds a private key")
		}
	}
	if strings.Contains(w.Body.String(), `"d"`) {
		t.Fatal("the set holds a private scalar")
	}
	w = httptest.NewRecorder()
	s.ServeJWKS(w, httptest.NewRequest(http.MethodPost, "/jwks.json", nil))
	if w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", w.Code)
	}
}

// TestAssertionConcurrent: many requests at once, for more identities than
// the cache holds, each get a valid token of their own identity (run with
// -race).
func TestAssertionConcurrent(t *testing.T) {
	s := newSigner(t, Config{Keys: []*ecdsa.PrivateKey{newKey(t)}, CacheSize: 4})
	site := Site{HTTPS: true, Host: "app.example.com"}
	ids := make([]*identity.Identity, 8)
	for i := range ids {
		ids[i] = newAlice(func(id *identity.Identity) { id.UserID = fmt.Sprintf("u_%d", i) })
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				id := ids[(g+i)%len(ids)]
				tok, err := s.Assertion(site, id)
				if err == nil {
					var jt jwt.Token
					if jt, err = verify(t, s.JWKS(), tok, "https://app.example.com", "app.example.com", time.Now()); err == nil {
						if sub, _ := jt.Subject(); sub != id.UserID {
							err = fmt.Errorf("token for %s says sub %s", id.UserID, sub)
						}
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := s.cache.len(); n > 4 {
		t.Errorf("cache holds %d tokens; bound is 4", n)
	}
}
