package caddycognito

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

// writeAssertionKey writes a new P-256 key as SEC 1 PEM into dir.
func writeAssertionKey(t *testing.T, dir, name string) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalECPrivateKey(k)
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func getBody(t *testing.T, client *http.Client, url string) string {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }() // read-only
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return string(b)
}

// TestAssertionInCaddy: cognito_bearer with `assertion` in a real Caddy
// sends a token that jwx verifies against the site's published keys; a
// client-sent X-Auth-Assertion, in any spelling, never reaches the
// upstream; the admin API publishes the same keys; the token is reused.
func TestAssertionInCaddy(t *testing.T) {
	ti := newTestIssuer(t)
	up := newEchoUpstream(t)
	key := writeAssertionKey(t, t.TempDir(), "assertion.pem")
	tester := startCaddy(t, ti, up.URL, `
		assertion {
			key `+key+`
			lifetime 30s
		}`, `
		cognito_assertion_keys /.well-known/cognito-assertion-keys.json
		cognito_bearer {
			assertion
		}
	`)
	tok := ti.Sign(ti.AccessClaims(nil))
	spoof := map[string][]string{
		"Authorization":    {"Bearer " + tok},
		"X-Auth-Assertion": {"spoofed.header.value"},
		"x_auth_assertion": {"spoofed.underscore.value"},
		"Connection":       {"X-Auth-Assertion"},
	}
	resp, body := do(t, tester, "/app", spoof)
	if resp.StatusCode != 200 || body != "upstream ok" {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
	h, _ := up.seen()
	got := h.Values("X-Auth-Assertion")
	if len(got) != 1 || strings.Contains(got[0], "spoofed") {
		t.Fatalf("upstream X-Auth-Assertion = %q; want exactly one signed token", got)
	}
	for name, vals := range h {
		if strings.Contains(strings.Join(vals, ","), "spoofed") {
			t.Errorf("the spoofed value reached the upstream as %s", name)
		}
	}

	published := getBody(t, tester.Client, "http://localhost:9080/.well-known/cognito-assertion-keys.json")
	if admin := getBody(t, tester.Client, "http://localhost:2999/cognito/assertion/jwks.json"); admin != published {
		t.Errorf("the admin API publishes %s; the site %s", admin, published)
	}
	set, err := jwk.Parse([]byte(published))
	if err != nil {
		t.Fatal(err)
	}
	jt, err := jwt.Parse([]byte(got[0]), jwt.WithKeySet(set), jwt.WithIssuer("http://localhost:9080"), jwt.WithAudience("localhost:9080"))
	if err != nil {
		t.Fatalf("jwx refuses the upstream's assertion: %v", err)
	}
	sub, _ := jt.Subject()
	var username, pool string
	_ = jt.Get("username", &username)
	_ = jt.Get("pool", &pool)
	iat, _ := jt.IssuedAt()
	exp, _ := jt.Expiration()
	if sub != h.Get("X-Auth-User") || username != "alice" || pool != "main" || exp.Sub(iat) != 30*time.Second {
		t.Errorf("claims sub=%q username=%q pool=%q lifetime=%s; want the X-Auth-User value, alice, main, 30s", sub, username, pool, exp.Sub(iat))
	}

	// The next request of the same identity gets the same token.
	if resp, _ := do(t, tester, "/app", spoof); resp.StatusCode != 200 {
		t.Fatalf("second request: %d", resp.StatusCode)
	}
	if h2, _ := up.seen(); h2.Get("X-Auth-Assertion") != got[0] {
		t.Error("the assertion is signed again within its reuse window")
	}
}

// TestAssertionDefaultKey: without key files the key comes from a seed
// generated once in Caddy's data directory (0600), the same on every load.
func TestAssertionDefaultKey(t *testing.T) {
	data := t.TempDir()
	t.Setenv("XDG_DATA_HOME", data)
	first, err := new(AssertionConfig).newSigner()
	if err != nil {
		t.Fatal(err)
	}
	second, err := new(AssertionConfig).newSigner()
	if err != nil {
		t.Fatal(err)
	}
	if first.KeyIDs()[0] != second.KeyIDs()[0] {
		t.Error("the generated key changes between loads")
	}
	fi, err := os.Stat(filepath.Join(data, "caddy", "cognito", defaultAssertionKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %04o; want 0600", fi.Mode().Perm())
	}
}

// TestAssertionKeyFromGlobalSecret: without key files, instances that
// share the global secret derive one key (no file in the data dir), and
// a previous secret's key is published after it for one lifetime after
// the load only; key files still win, and stay published.
func TestAssertionKeyFromGlobalSecret(t *testing.T) {
	data := t.TempDir()
	t.Setenv("XDG_DATA_HOME", data)
	const secret, previous = "this-is-the-shared-secret-of-the-instances", "an-older-shared-secret-of-the-instances!"
	one, err := new(AssertionConfig).newSigner(secret)
	if err != nil {
		t.Fatal(err)
	}
	loaded := time.Unix(1_800_000_000, 0)
	now := loaded
	clock := func() time.Time { return now }
	other, err := (&AssertionConfig{Lifetime: caddy.Duration(10 * time.Second), now: clock}).newSigner(secret, previous)
	if err != nil {
		t.Fatal(err)
	}
	old, _ := new(AssertionConfig).newSigner(previous)
	if kids := other.KeyIDs(); len(kids) != 2 || kids[0] != one.KeyIDs()[0] || kids[1] != old.KeyIDs()[0] {
		t.Errorf("kids %v; want the secret's %s, then the previous secret's %s", kids, one.KeyIDs()[0], old.KeyIDs()[0])
	}
	now = loaded.Add(10 * time.Second)
	if kids := other.KeyIDs(); len(kids) != 1 || kids[0] != one.KeyIDs()[0] {
		t.Errorf("one lifetime after the load kids are %v; want only the secret's %s", kids, one.KeyIDs()[0])
	}
	oldPEM, newPEM := writeAssertionKey(t, t.TempDir(), "old.pem"), writeAssertionKey(t, t.TempDir(), "new.pem")
	files, err := (&AssertionConfig{KeyFiles: []string{newPEM, oldPEM}, now: clock}).newSigner(secret, previous)
	if err != nil {
		t.Fatal(err)
	}
	now = loaded.Add(time.Hour)
	if len(files.KeyIDs()) != 2 {
		t.Errorf("key files published an hour after the load: %v; want both", files.KeyIDs())
	}
	if _, err := os.Stat(filepath.Join(data, "caddy", "cognito", defaultAssertionKeyFile)); err == nil {
		t.Error("a key file was generated although the secret gives the key")
	}
	key := writeAssertionKey(t, t.TempDir(), "k.pem")
	if files, _ := (&AssertionConfig{KeyFiles: []string{key}}).newSigner(secret); len(files.KeyIDs()) != 1 || files.KeyIDs()[0] == one.KeyIDs()[0] {
		t.Error("with key files, the secret's key is used or published")
	}
	if _, err := new(AssertionConfig).newSigner("short"); err == nil {
		t.Error("a secret under 32 bytes gives a key")
	}
}

func TestAssertionConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg     AssertionConfig
		wantErr string
	}{
		{AssertionConfig{}, ""},
		{AssertionConfig{Lifetime: caddy.Duration(5 * time.Minute), Issuer: "https://app.example.com"}, ""},
		{AssertionConfig{Lifetime: caddy.Duration(5*time.Minute + time.Second)}, "out of range"},
		{AssertionConfig{Lifetime: caddy.Duration(time.Second)}, "out of range"},
		{AssertionConfig{Issuer: "http://app.example.com"}, "https"},
		{AssertionConfig{Issuer: "https://app.example.com/?x"}, "without credentials"},
		{AssertionConfig{Issuer: "{env.ASSERTION_ISSUER}"}, ""}, // checked once expanded
	} {
		err := tc.cfg.validate()
		if (tc.wantErr == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%+v: %v; want %q", tc.cfg, err, tc.wantErr)
		}
	}
	if _, err := (&AssertionConfig{KeyFiles: []string{filepath.Join(t.TempDir(), "missing.pem")}}).newSigner(); err == nil {
		t.Error("a missing key file is accepted")
	}
}

// TestAssertionLogin: cognito_login with `assertion` signs the signed-in
// local user (sub = X-Auth-User, the verified email, the session's pool);
// the keys route answers without a session; a client-sent assertion is
// replaced.
func TestAssertionLogin(t *testing.T) {
	key := writeAssertionKey(t, t.TempDir(), "assertion.pem")
	s := startLoginSiteWith(t, "assertion {\n\t\t\t\tkey "+key+"\n\t\t\t}",
		"cognito_assertion_keys /.well-known/cognito-assertion-keys.json",
		"assertion\n\t\t\tadmit email_domain example.com")
	b := newBrowser(t)
	published := getBody(t, b, loginSiteURL+"/.well-known/cognito-assertion-keys.json") // no session yet
	resp, page := get(t, b, loginSiteURL+"/docs")
	if resp, page = signIn(t, b, resp, page, "alice"); resp.StatusCode != 200 || page != "upstream ok" {
		t.Fatalf("after sign-in: %d %.300s", resp.StatusCode, page)
	}
	req, _ := http.NewRequest(http.MethodGet, loginSiteURL+"/docs", nil)
	req.Header["X_Auth_Assertion"] = []string{"spoofed.a.b"}
	req.Header.Set("X-Auth-Assertion", "spoofed.c.d")
	hr, err := b.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = hr.Body.Close() // read-only
	h, _ := s.upstream.seen()
	got := h.Values("X-Auth-Assertion")
	if hr.StatusCode != 200 || len(got) != 1 || strings.Contains(got[0], "spoofed") || len(h.Values("X_Auth_Assertion")) != 0 {
		t.Fatalf("HTTP %d; upstream assertions %q, %q", hr.StatusCode, got, h.Values("X_Auth_Assertion"))
	}
	set, err := jwk.Parse([]byte(published))
	if err != nil {
		t.Fatal(err)
	}
	jt, err := jwt.Parse([]byte(got[0]), jwt.WithKeySet(set), jwt.WithIssuer(loginSiteURL), jwt.WithAudience("localhost:9080"))
	if err != nil {
		t.Fatalf("jwx refuses the assertion: %v", err)
	}
	sub, _ := jt.Subject()
	var email, username, pool string
	var verified bool
	_ = jt.Get("email", &email)
	_ = jt.Get("email_verified", &verified)
	_ = jt.Get("username", &username)
	_ = jt.Get("pool", &pool)
	if sub != h.Get("X-Auth-User") || !strings.HasPrefix(sub, "u_") || email != "alice@example.com" || !verified || username != "alice" || pool != "main" {
		t.Errorf("claims sub=%q email=%q verified=%v username=%q pool=%q; want the local user id %q, alice's verified email, main",
			sub, email, verified, username, pool, h.Get("X-Auth-User"))
	}
}

// TestAssertionAdminWithoutAssertion: a config that signs nothing
// publishes nothing, and creates no key.
func TestAssertionAdminWithoutAssertion(t *testing.T) {
	data := t.TempDir()
	t.Setenv("XDG_DATA_HOME", data)
	ti := newTestIssuer(t)
	up := newEchoUpstream(t)
	tester := startCaddy(t, ti, up.URL, "", "cognito_bearer")
	resp, err := tester.Client.Get("http://localhost:2999/cognito/assertion/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close() // read-only
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /cognito/assertion/jwks.json without assertions: %d; want 404", resp.StatusCode)
	}
	if _, err := os.Stat(filepath.Join(data, "caddy", "cognito", defaultAssertionKeyFile)); err == nil {
		t.Error("a key was generated for a config that never signs")
	}
	if resp, _ := do(t, tester, "/", map[string][]string{"Authorization": {"Bearer " + ti.Sign(ti.AccessClaims(nil))}}); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if h, _ := up.seen(); h.Get("X-Auth-Assertion") != "" || h.Get("X-Auth-User") == "" {
		t.Errorf("without the option: X-Auth-Assertion %q, X-Auth-User %q", h.Get("X-Auth-Assertion"), h.Get("X-Auth-User"))
	}
}
