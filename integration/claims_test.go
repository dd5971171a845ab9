package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-cognito/caddy-cognito/integration/internal/cognitolocal"
)

// Claims of the project README that these tests hold the xcaddy-built
// binary to, with the real stand-ins:
//
//	TestClaimJWKSUnreachable503              an unreachable JWKS: 503 temporarily_unavailable, the log says why, keys held are kept
//	TestClaimNoTokenReachesLoginUpstream     no access, ID or refresh token and no plugin cookie reaches cognito_login's upstream
//	TestClaimNoSecretInCaddyLog              a debug-level log of sign-in, refresh and logout holds no token and no session id
//	TestClaimStoreHoldsOnlySessionHash       the SQLite files hold the SHA-256 of the session id, never the id or a token
//	TestClaimTrustedProxyForwardedHeaders    X-Forwarded-Proto/Host from a trusted_proxies peer build the redirect URI
//	TestClaimNewSignInEndsPreviousSession    signing in again in the same browser ends its previous session

// ---- 1. unreachable JWKS ----

const claimsJWKSCaddyfile = `{
	admin {$CADDY_ADMIN}
	auto_https off
	cognito {
		pool main {
			issuer @ISSUER@
			jwks_url @JWKS_URL@
			client_id @CLIENT_ID@
		}
	}
}

http://127.0.0.1:@PORT@ {
	cognito_bearer {
		realm claims
	}
	reverse_proxy @UPSTREAM@
}
`

// TestClaimJWKSUnreachable503: "An unreachable JWKS never stops Caddy from
// starting: requests fail closed with 503 and the log says why, and keys
// already held are never dropped because a refresh failed." The pool's
// jwks_url is a loopback port nothing listens on; later the test serves
// cognito-local's key set there, then closes it again.
func TestClaimJWKSUnreachable503(t *testing.T) {
	s := getStack(t)
	jwksPort, err := cognitolocal.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	jwksURL := fmt.Sprintf("http://127.0.0.1:%d/jwks.json", jwksPort)
	ls := newLoginSite(t, s, 0, claimsJWKSCaddyfile, map[string]string{
		"@ISSUER@": s.issuer, "@JWKS_URL@": jwksURL, "@CLIENT_ID@": s.web.ClientID,
	})
	// A real access token of the pool: kid CognitoLocal, which the key set
	// has never seen, so verifying it needs a fetch.
	tok := s.login(t, s.web.ClientID, alice)
	if h, err := jwtHeader(tok.AccessToken); err != nil || h["kid"] != cognitolocal.KeyID {
		t.Fatalf("cognito-local's access token header %v (%v), want kid %s", h, err, cognitolocal.KeyID)
	}
	web := newWebClient(t)
	call := func(token string) result {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, ls.base+"/api/things", nil)
		req.Header.Set("Accept", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		return web.do(req)
	}

	r := call(tok.AccessToken)
	wantUnavailable(t, r, tok.AccessToken)
	// Without a token nothing needs keys: still the 401 challenge.
	if r := call(""); r.Status != http.StatusUnauthorized || !strings.HasPrefix(r.Header.Get("Www-Authenticate"), `Bearer realm="claims"`) {
		t.Errorf("no token while the JWKS is unreachable: want 401 with a Bearer challenge, got %s", r)
	}
	// The log says why, and names the key set it could not fetch.
	waitOutput(t, ls, 10*time.Second, "a log line saying the signing keys are unavailable", func(out string) bool {
		return strings.Contains(out, "signing keys unavailable") && strings.Contains(out, jwksURL)
	})
	if containsToken(ls.caddy.Output(), tok.AccessToken) {
		t.Errorf("the token is in Caddy's log")
	}

	// The key set becomes reachable: cognito-local's JWKS, served on that port.
	keys := fetchBody(t, s.cl.JWKSURL(s.pool.ID))
	jwks := newJWKSServer(t, jwksPort, keys)
	start := time.Now()
	var ok result
	pollUntil(t, 90*time.Second, "the token to pass once the JWKS answers", func() bool {
		ok = call(tok.AccessToken)
		if ok.Upstream != nil {
			return true
		}
		if ok.Status != http.StatusServiceUnavailable {
			t.Fatalf("while the keys are on their way: want 503 or the upstream, got %s", ok)
		}
		return false
	})
	t.Logf("the token passed %v after the JWKS became reachable (%d fetches seen)", time.Since(start).Round(time.Millisecond), jwks.hits())
	if got := one(t, ok.Upstream.authHeaders(), "x-auth-user"); got != s.users[alice].Sub {
		t.Errorf("X-Auth-User = %q, want alice's sub %q", got, s.users[alice].Sub)
	}
	if jwks.hits() == 0 {
		t.Errorf("the token passed but the JWKS server was never asked")
	}

	// The key set goes away again. A token with a kid nobody knows makes the
	// key set refetch (at most once a minute): until that refetch fails it
	// is an unknown key (401); once it has failed it may be a key we could
	// not learn (503). Either way the keys already held stay in use.
	jwks.close()
	m := *s.minter
	m.Kid = "rotated-" + randomHex(t, 3)
	unknown := m.MustSign(s.minter.AccessClaims(s.issuer, s.web.ClientID, s.users[alice].Sub, alice))
	pollUntil(t, 90*time.Second, "a failed refetch for an unknown kid (503)", func() bool {
		r := call(unknown)
		switch r.Status {
		case http.StatusServiceUnavailable:
			wantUnavailable(t, r, unknown)
			return true
		case http.StatusUnauthorized:
			if !strings.Contains(r.Header.Get("Www-Authenticate"), `error="invalid_token"`) {
				t.Fatalf("unknown kid: want 401 invalid_token or 503, got %s", r)
			}
		default:
			t.Fatalf("unknown kid with the JWKS gone: want 401 or 503, got %s", r)
		}
		// The key fetched before is still there, whatever the refetch did.
		if r := call(tok.AccessToken); r.Upstream == nil {
			t.Fatalf("with the JWKS gone again the token fetched keys verified is refused: %s", r)
		}
		return false
	})
	if r := call(tok.AccessToken); r.Upstream == nil {
		t.Fatalf("after a failed key refresh the key already held was dropped: %s", r)
	}
}

// wantUnavailable: 503 from the plugin, JSON error temporarily_unavailable,
// no challenge (README: "—"), the token not echoed, the upstream not reached.
func wantUnavailable(t *testing.T, r result, token string) {
	t.Helper()
	if r.Status != http.StatusServiceUnavailable || r.Upstream != nil {
		t.Fatalf("want 503 from caddy-cognito, got %s (reached upstream: %v)", r, r.Upstream != nil)
	}
	var body struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil || body.Error != "temporarily_unavailable" {
		t.Errorf("503 body %q: want JSON error temporarily_unavailable (%v)", r.Body, err)
	}
	if !strings.Contains(r.Header.Get("Content-Type"), "application/json") {
		t.Errorf("503 Content-Type %q, want application/json", r.Header.Get("Content-Type"))
	}
	if ch := r.Header.Get("Www-Authenticate"); ch != "" {
		t.Errorf("503 carries WWW-Authenticate %q; the README documents none (the token is not at fault)", ch)
	}
	if containsToken(string(r.Body), token) {
		t.Errorf("the 503 body echoes the token")
	}
}

// jwksServer serves a fixed key set on a loopback port.
type jwksServer struct {
	srv   *http.Server
	ln    net.Listener
	mu    sync.Mutex
	count int
	once  sync.Once
}

func newJWKSServer(t *testing.T, port int, body []byte) *jwksServer {
	t.Helper()
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatalf("listening on the JWKS port %d: %v", port, err)
	}
	j := &jwksServer{ln: ln}
	j.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		j.mu.Lock()
		j.count++
		j.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body) // a write error is the client's problem
	})}
	go func() { _ = j.srv.Serve(ln) }() // ErrServerClosed once close runs
	t.Cleanup(j.close)
	return j
}

func (j *jwksServer) hits() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.count
}

// close stops listening and drops open connections: the port refuses again.
func (j *jwksServer) close() {
	j.once.Do(func() { _ = j.srv.Close() }) // only the listener's error; the port refuses either way
}

// ---- 2. no token reaches cognito_login's upstream ----

// TestClaimNoTokenReachesLoginUpstream: "Tokens never reach the browser and
// never reach the upstream", "The plugin's cookies are removed from the
// request before it goes upstream." The hosted-UI endpoints go through a
// recording proxy, so the test knows the very tokens cognito-local issued
// to Caddy, and checks every header the upstream received.
func TestClaimNoTokenReachesLoginUpstream(t *testing.T) {
	ls, rec := newRecordedCognitoLoginSite(t, loginCognitoCaddyfile)
	email := uniqueEmail(t, "nora", loginPartnerDom)
	cognitoUser(t, ls.s, email, nil, nil)

	c := newWebClient(t)
	c.setCookie(ls.base, "theme", "dark") // the app's own cookie must still arrive
	p := ls.signInPlain(t, c, "/app", email)
	sid := p.wantSignedIn(t, "/app")
	issued := rec.tokens()
	if len(issued) != 1 {
		t.Fatalf("the recording proxy saw %d token responses, want the one of the sign-in: %+v", len(issued), issued)
	}
	tk := issued[0]
	if tk.Grant != "authorization_code" || !jwtShape.MatchString(tk.Access) || !jwtShape.MatchString(tk.ID) || tk.Refresh == "" {
		t.Fatalf("the sign-in's token response: grant %q, access %q, id %q, refresh %q", tk.Grant, abbrev(tk.Access), abbrev(tk.ID), abbrev(tk.Refresh))
	}
	var secrets secretSet
	secrets.addTokens(tk)
	secrets.add("the session id", sid)
	secrets.add("the authorization code", p.callback.Query().Get("code"))
	for _, ck := range p.before {
		if strings.Contains(ck.Name, "cognito") {
			secrets.add("the sign-in cookie "+ck.Name, ck.Value)
		}
	}

	me := c.api(http.MethodGet, ls.base+"/auth/me", nil)
	var who loginMe
	if me.Status != 200 || json.Unmarshal(me.Body, &who) != nil || who.User.ID == "" {
		t.Fatalf("/auth/me: %s", me)
	}
	requests := []func() result{
		func() result { return c.navigate(ls.base + "/app") },
		func() result { return c.navigate(ls.base + "/app/page?x=1") },
		func() result { return c.api(http.MethodGet, ls.base+"/api/items", nil) },
		func() result { return c.postForm(ls.base+"/app/save", url.Values{"v": {"1"}}, "Origin", ls.base) },
		func() result {
			return c.api(http.MethodPut, ls.base+"/api/items/1", strings.NewReader(`{"a":1}`), "Content-Type", "application/json")
		},
	}
	for i, req := range requests {
		r := req()
		if r.Upstream == nil {
			t.Fatalf("request %d: want the upstream's answer, got %s", i, r)
		}
		e := r.Upstream
		if got := one(t, e.authHeaders(), "x-auth-user"); got != who.User.ID {
			t.Errorf("request %d (%s %s): X-Auth-User = %q, want %q", i, e.Method, e.Path, got, who.User.ID)
		}
		wantNoSecretsUpstream(t, fmt.Sprintf("request %d (%s %s)", i, e.Method, e.Path), e, &secrets)
		cookies := upstreamCookies(e)
		if cookies["theme"] != "dark" {
			t.Errorf("request %d: the app's own cookie theme=dark did not reach the upstream (cookies %v): the check above would prove nothing", i, cookies)
		}
	}
	// Nor does a token reach the browser: not in any cookie it holds.
	var tokensOnly secretSet
	tokensOnly.addTokens(tk)
	for _, ck := range c.cookies(ls.base) {
		if found := tokensOnly.leaks(ck.Value); len(found) > 0 {
			t.Errorf("the browser's cookie %s holds %s", ck.Name, strings.Join(found, ", "))
		}
	}
	if n := len(rec.tokens()); n != 1 {
		t.Logf("%d token responses after the requests (a refresh happened)", n)
	}
}

// wantNoSecretsUpstream checks every header the upstream got (names and
// values, Cookie included): no token, no JWT-shaped value, no plugin cookie.
func wantNoSecretsUpstream(t *testing.T, what string, e *echoed, secrets *secretSet) {
	t.Helper()
	names := make([]string, 0, len(e.Headers))
	for k := range e.Headers {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		for _, v := range e.Headers[k] {
			if found := secrets.leaks(k + ": " + v); len(found) > 0 {
				t.Errorf("%s: the upstream received header %s carrying %s", what, k, strings.Join(found, ", "))
			}
		}
	}
	for name := range upstreamCookies(e) {
		if strings.Contains(strings.ToLower(name), "cognito") {
			t.Errorf("%s: the plugin's cookie %s reached the upstream", what, name)
		}
	}
}

// upstreamCookies parses the Cookie headers the upstream received.
func upstreamCookies(e *echoed) map[string]string {
	out := map[string]string{}
	for k, vs := range e.Headers {
		if !strings.EqualFold(k, "Cookie") {
			continue
		}
		req := http.Request{Header: http.Header{"Cookie": vs}}
		for _, c := range req.Cookies() {
			out[c.Name] = c.Value
		}
	}
	return out
}

// ---- 3. nothing secret in Caddy's log ----

const claimsOIDCLogCaddyfile = `{
	admin {$CADDY_ADMIN}
	auto_https off
	log {
		level DEBUG
	}
	cognito {
		store sqlite @DB@
		pool op {
			issuer @ISSUER@
			jwks_url @ISSUER@/jwks
			client_id @CLIENT_ID@
			client_secret @CLIENT_SECRET@
		}
	}
}

http://127.0.0.1:@PORT@ {
	log
	cognito_login {
		secret @SECRET@
		admit email_domain example.com
		scopes openid email profile offline_access
	}
	reverse_proxy @UPSTREAM@
}
`

// TestClaimNoSecretInCaddyLog: "The token never appears in a log", and the
// session id (the cookie) neither. Caddy runs with `log { level DEBUG }` and
// the site's access log; the test captures all of it over a sign-in, a
// refresh (oidc-provider with 3 s tokens) and a logout, then searches it
// for the session cookie, every token and code the provider issued and
// anything JWT-shaped. The authorization code is in the callback's URI,
// which Caddy's own access log records; it must be nowhere else.
func TestClaimNoSecretInCaddyLog(t *testing.T) {
	t.Run("oidc-provider: sign-in, refresh, logout", func(t *testing.T) {
		s := getStack(t)
		port, err := cognitolocal.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		base := fmt.Sprintf("http://127.0.0.1:%d", port)
		clientID, secret := "caddy-"+randomHex(t, 4), randomHex(t, 24)
		op := startOP(t, 0, clientID, secret, base, "ACCESS_TOKEN_TTL=3", "ID_TOKEN_TTL=3", "ROTATE_REFRESH_TOKEN=always")
		ls := newLoginSite(t, s, port, claimsOIDCLogCaddyfile, map[string]string{
			"@ISSUER@": op.issuer, "@CLIENT_ID@": clientID, "@CLIENT_SECRET@": secret,
		})
		ls.issuer = op.issuer
		ls.client = cognitolocal.AppClient{ClientID: clientID, ClientSecret: secret}
		login := "lara-" + randomHex(t, 3)

		c := newWebClient(t)
		p := ls.opSignInPlain(t, c, op, "/app", login)
		sid := p.wantSignedIn(t, "/app")
		code := p.callback.Query().Get("code")
		var secrets secretSet
		secrets.add("the session id", sid)
		secrets.add("the authorization code", code)
		// oidc-provider's tokens are opaque (their value is their id); its
		// event log names each one by a hash of that id.
		// The code's hash among them shows that the hash search finds tokens.
		op.waitFor(t, 10*time.Second, "the callback's code among the provider's saved authorization codes", func() bool {
			return op.tokenHashes()[opHash(code)] == "AuthorizationCode"
		})
		for h, kind := range op.tokenHashes() {
			secrets.addHashed(h, kind)
		}

		// Use the session until Caddy has refreshed the tokens twice.
		var seen []*echoed
		start := time.Now()
		pollUntil(t, 60*time.Second, "two refreshes by Caddy", func() bool {
			r := c.navigate(ls.base + "/app/poll")
			if r.Upstream == nil {
				t.Fatalf("%v after sign-in the session stopped working: %s", time.Since(start).Round(time.Millisecond), r)
			}
			seen = append(seen, r.Upstream)
			return len(op.refreshes()) >= 2
		})
		if r := c.api(http.MethodGet, ls.base+"/auth/me", nil); r.Status != 200 {
			t.Fatalf("/auth/me after the refreshes: %s", r)
		}

		// Logout through the provider's end_session page.
		out := ls.logoutPlain(t, c, "/bye")
		if !strings.HasPrefix(out.String(), op.issuer+"/session/end?") {
			t.Fatalf("sign-out sent the browser to %s, want %s/session/end", out, op.issuer)
		}
		back := opEndSession(t, c, out)
		if !strings.HasPrefix(back.String(), ls.base+"/auth/logout/done") {
			t.Fatalf("oidc-provider's end_session sent the browser to %s", back)
		}
		c.navigate(back.String())
		op.waitFor(t, 10*time.Second, "end_session.success", func() bool { return op.count("end_session.success") == 1 })
		op.waitFor(t, 10*time.Second, "the refresh token revoked", func() bool { return op.count("refresh_token.destroyed") >= 1 })
		wantSignInRedirect(t, ls.base, c.navigate(ls.base+"/app"), "/app")

		for h, kind := range op.tokenHashes() {
			secrets.addHashed(h, kind)
		}
		if n := secrets.countHashed("AccessToken"); n < 3 {
			t.Errorf("oidc-provider issued %d access tokens, want ≥ 3 (sign-in and two refreshes)", n)
		}
		if n := secrets.countHashed("RefreshToken"); n < 3 {
			t.Errorf("oidc-provider issued %d refresh tokens, want ≥ 3 (rotation at each refresh)", n)
		}
		for i, e := range seen {
			wantNoSecretsUpstream(t, fmt.Sprintf("poll request %d", i), e, &secrets)
		}
		ls.caddy.Stop() // everything it will ever log is in Output now
		wantCleanLog(t, ls.caddy.Output(), &secrets, "the authorization code", "an oidc-provider AuthorizationCode")
	})

	t.Run("cognito-local hosted UI: sign-in, logout", func(t *testing.T) {
		ls, rec := newRecordedCognitoLoginSite(t, withDebugLog(t, loginCognitoCaddyfile))
		email := uniqueEmail(t, "lou", loginPartnerDom)
		cognitoUser(t, ls.s, email, nil, nil)
		c := newWebClient(t)
		p := ls.signInPlain(t, c, "/app", email)
		sid := p.wantSignedIn(t, "/app")
		if r := c.navigate(ls.base + "/app/page"); r.Upstream == nil {
			t.Fatalf("signed in: %s", r)
		}
		out := ls.logoutPlain(t, c, "/bye")
		back := c.navigate(out.String())
		if back.Status != http.StatusFound || back.Header.Get("Location") != ls.base+"/auth/logout/done" {
			t.Fatalf("cognito-local's /logout answered %s", back)
		}
		c.navigate(ls.base + "/auth/logout/done")
		wantSignInRedirect(t, ls.base, c.navigate(ls.base+"/app"), "/app")

		var secrets secretSet
		secrets.add("the session id", sid)
		secrets.add("the authorization code", p.callback.Query().Get("code"))
		issued := rec.tokens()
		if len(issued) == 0 || issued[0].Access == "" || issued[0].Refresh == "" {
			t.Fatalf("the recording proxy saw no tokens: %+v", issued)
		}
		for _, tk := range issued {
			secrets.addTokens(tk)
		}
		pollUntil(t, 10*time.Second, "the refresh token revoked at sign-out", func() bool { return len(rec.revokedTokens()) > 0 })
		if rv := rec.revokedTokens(); len(rv) != 1 || rv[0] != issued[0].Refresh {
			t.Errorf("sign-out revoked %d tokens, want exactly the session's refresh token", len(rv))
		}
		ls.caddy.Stop()
		wantCleanLog(t, ls.caddy.Output(), &secrets, "the authorization code")
	})
}

// withDebugLog adds `log { level DEBUG }` to the global options and an
// access log to the site of a Caddyfile of this package.
func withDebugLog(t *testing.T, caddyfile string) string {
	t.Helper()
	const admin = "\tadmin {$CADDY_ADMIN}\n"
	site := regexp.MustCompile(`(?m)^(\S+://127\.0\.0\.1:@PORT@ \{\n)`)
	if strings.Count(caddyfile, admin) != 1 || len(site.FindAllString(caddyfile, -1)) != 1 {
		t.Fatalf("withDebugLog: unexpected Caddyfile shape:\n%s", caddyfile)
	}
	caddyfile = strings.Replace(caddyfile, admin, admin+"\tlog {\n\t\tlevel DEBUG\n\t}\n", 1)
	return site.ReplaceAllString(caddyfile, "${1}\tlog\n")
}

// wantCleanLog searches Caddy's whole output for the secrets. allowedInAccess
// names secrets that may appear in Caddy's access log entries only (the
// URI of a request, which Caddy logs as received), and nowhere else.
func wantCleanLog(t *testing.T, out string, secrets *secretSet, allowedInAccess ...string) {
	t.Helper()
	lines := strings.Split(out, "\n")
	var debug, plugin, access int
	for i, line := range lines {
		var entry struct {
			Level  string `json:"level"`
			Logger string `json:"logger"`
		}
		_ = json.Unmarshal([]byte(line), &entry) // a line that is not JSON counts as not an access log
		isAccess := strings.HasPrefix(entry.Logger, "http.log.access")
		switch {
		case isAccess:
			access++
		case entry.Level == "debug":
			debug++
		}
		if strings.Contains(entry.Logger, "cognito") {
			plugin++
		}
		for _, what := range secrets.leaks(line) {
			if isAccess && slices.Contains(allowedInAccess, what) {
				t.Logf("log line %d: Caddy's access log records the request URI with %s", i+1, what)
				continue
			}
			t.Errorf("log line %d (logger %q) holds %s: %s", i+1, entry.Logger, what, abbrev(line))
		}
	}
	t.Logf("searched %d log lines (%d bytes): %d debug, %d from the plugin, %d access log entries", len(lines), len(out), debug, plugin, access)
	if debug == 0 || plugin == 0 || access == 0 {
		t.Errorf("the log has %d debug lines, %d from the plugin and %d access log entries: want all three, or the search proves little", debug, plugin, access)
	}
}

// ---- 4. the store keeps only the SHA-256 of a session id ----

// TestClaimStoreHoldsOnlySessionHash: "The cookie holds only a random
// 256-bit id; the store keeps its SHA-256", and "Refresh tokens are stored
// encrypted". After a sign-in the SQLite database and its -wal file, read
// as raw bytes, hold the hex SHA-256 of the cookie's value and neither the
// value nor any token of the sign-in.
func TestClaimStoreHoldsOnlySessionHash(t *testing.T) {
	ls, rec := newRecordedCognitoLoginSite(t, loginCognitoCaddyfile)
	email := uniqueEmail(t, "hana", loginPartnerDom)
	cognitoUser(t, ls.s, email, nil, nil)
	c := newWebClient(t)
	sid := ls.signInPlain(t, c, "/", email).wantSignedIn(t, "/")
	if r := c.navigate(ls.base + "/page"); r.Upstream == nil {
		t.Fatalf("signed in: %s", r)
	}
	raw, err := base64URLDecode(sid)
	if err != nil || len(raw) != 32 {
		t.Errorf("session cookie %q: want 256 random bits, base64url (%d bytes, %v)", sid, len(raw), err)
	}
	sum := sha256.Sum256([]byte(sid))
	hash := hex.EncodeToString(sum[:])

	files, err := filepath.Glob(filepath.Join(ls.dir, "cognito.db*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no SQLite files cognito.db* in %s (%v)", ls.dir, err)
	}
	var all []byte
	var names []string
	for _, f := range files {
		b, err := os.ReadFile(f) //nolint:gosec // G304: a fixture path of this repository
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, fmt.Sprintf("%s (%d bytes)", filepath.Base(f), len(b)))
		all = append(all, b...)
		all = append(all, 0)
		if bytes.Contains(b, []byte(sid)) {
			t.Errorf("%s holds the session cookie's value", filepath.Base(f))
		}
		if bytes.Contains(b, raw) && len(raw) == 32 {
			t.Errorf("%s holds the session id's raw bytes", filepath.Base(f))
		}
		for _, tk := range rec.tokens() {
			for what, v := range map[string]string{"access token": tk.Access, "ID token": tk.ID, "refresh token": tk.Refresh} {
				if containsToken(string(b), v) {
					t.Errorf("%s holds the %s in clear", filepath.Base(f), what)
				}
			}
		}
	}
	t.Logf("read %s", strings.Join(names, ", "))
	if !bytes.Contains(all, []byte(hash)) {
		t.Errorf("no file holds the hex SHA-256 %s of the session cookie: the store does not keep it as documented (or the test reads the wrong files)", hash)
	}
	if n := bytes.Count(all, []byte(hash)); n > 0 {
		t.Logf("the hex SHA-256 of the session id occurs %d times across the files", n)
	}
}

// ---- 5. X-Forwarded-* from a trusted proxy ----

const claimsTrustedProxyCaddyfile = `{
	admin {$CADDY_ADMIN}
	auto_https off
	servers {
		trusted_proxies static 127.0.0.1/8
	}
	cognito {
		store sqlite @DB@
		pool main {
			issuer @ISSUER@
			client_id @CLIENT_ID@
			client_secret @CLIENT_SECRET@
			domain @DOMAIN@
		}
	}
}

http://127.0.0.1:@PORT@ {
	cognito_login {
		secret @SECRET@
		admit email_domain @PARTNERS@
	}
	reverse_proxy @UPSTREAM@
}
`

// TestClaimTrustedProxyForwardedHeaders: "X-Forwarded-Proto/X-Forwarded-Host
// count only when the request comes from the server's trusted_proxies" —
// the positive case: they do count from a trusted peer. First a request
// with the headers straight from loopback (trusted), then a whole sign-in
// through a TLS-terminating reverse proxy that a client reaches as
// https://app.example.com.
func TestClaimTrustedProxyForwardedHeaders(t *testing.T) {
	s := getStack(t)
	cognitolocal.RequirePatched(t)
	const publicOrigin = "https://app.example.com"
	client := newAppClient(t, s, "proxied-", publicOrigin)
	ls := newLoginSite(t, s, 0, claimsTrustedProxyCaddyfile, map[string]string{
		"@ISSUER@": s.issuer, "@CLIENT_ID@": client.ClientID, "@CLIENT_SECRET@": client.ClientSecret,
		"@DOMAIN@": s.cl.URL, "@PARTNERS@": loginPartnerDom,
	})
	ls.client, ls.issuer = client, s.issuer
	fwd := []string{"X-Forwarded-Proto", "https", "X-Forwarded-Host", "app.example.com"}

	t.Run("a protected page redirects to sign-in with the forwarded origin", func(t *testing.T) {
		c := newWebClient(t)
		r := c.navigate(ls.base+"/reports/q3?tab=a", fwd...)
		if r.Status != http.StatusFound || r.Upstream != nil {
			t.Fatalf("protected page without a session: want 302, got %s", r)
		}
		loc := location(t, r)
		if loc.IsAbs() && loc.Scheme+"://"+loc.Host != publicOrigin {
			t.Errorf("the sign-in redirect %s leaves the forwarded origin %s", loc, publicOrigin)
		}
		if loc.Path != "/auth/login" || loc.Query().Get("next") != "/reports/q3?tab=a" {
			t.Fatalf("Location %s, want /auth/login?next=/reports/q3?tab=a", loc)
		}
		login := c.navigate(ls.base+loc.RequestURI(), fwd...)
		if login.Status != http.StatusFound {
			t.Fatalf("/auth/login: want 302 to the provider, got %s", login)
		}
		a := location(t, login)
		if !strings.HasPrefix(a.String(), s.cl.URL+"/oauth2/authorize?") {
			t.Fatalf("/auth/login sent the browser to %s, want %s/oauth2/authorize", a, s.cl.URL)
		}
		if got := a.Query().Get("redirect_uri"); got != publicOrigin+"/auth/callback" {
			t.Errorf("redirect_uri = %q, want %s/auth/callback (from the trusted peer's X-Forwarded-Proto/Host)", got, publicOrigin)
		}
		// The browser is on https: the sign-in cookie is Secure and __Host-.
		var state *http.Cookie
		for _, ck := range (&http.Response{Header: login.Header}).Cookies() {
			if strings.Contains(ck.Name, "cognito_login") {
				state = ck
			}
		}
		if state == nil || !state.Secure || !strings.HasPrefix(state.Name, "__Host-") {
			t.Errorf("sign-in cookie behind https: want __Host-…; Secure, got %q", login.Header.Values("Set-Cookie"))
		}
	})

	t.Run("only the host forwarded: http scheme, forwarded host", func(t *testing.T) {
		a := ls.startSignIn(t, newWebClient(t), "/", "X-Forwarded-Host", "app.example.com")
		if got := a.Query().Get("redirect_uri"); got != "http://app.example.com/auth/callback" {
			t.Errorf("redirect_uri = %q, want http://app.example.com/auth/callback", got)
		}
	})

	t.Run("without forwarded headers: the site as Caddy sees it", func(t *testing.T) {
		a := ls.startSignIn(t, newWebClient(t), "/")
		if got := a.Query().Get("redirect_uri"); got != ls.base+"/auth/callback" {
			t.Errorf("redirect_uri = %q, want %s/auth/callback", got, ls.base)
		}
	})

	t.Run("a whole sign-in through a TLS-terminating proxy", func(t *testing.T) {
		target, _ := url.Parse(ls.base)
		proxy := httptest.NewTLSServer(&httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target) // Host: 127.0.0.1:<port>, the site Caddy serves
			pr.SetXForwarded()
		}})
		t.Cleanup(proxy.Close)
		c := newWebClient(t)
		dialer := &net.Dialer{Timeout: 5 * time.Second}
		c.hc.Transport = &http.Transport{
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // G402: a test client of Caddy's local CA on loopback
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				if addr == "app.example.com:443" {
					addr = proxy.Listener.Addr().String()
				}
				return dialer.DialContext(ctx, network, addr)
			},
		}
		email := uniqueEmail(t, "pax", loginPartnerDom)
		cognitoUser(t, s, email, nil, nil)

		r := c.navigate(publicOrigin + "/reports/q3")
		if r.Status != http.StatusFound {
			t.Fatalf("https://app.example.com/reports/q3 without a session: %s", r)
		}
		loginURL := mustParse(t, publicOrigin+"/").ResolveReference(location(t, r))
		login := c.navigate(loginURL.String())
		a := location(t, login)
		if got := a.Query().Get("redirect_uri"); got != publicOrigin+"/auth/callback" {
			t.Fatalf("through the proxy the redirect_uri is %q, want %s/auth/callback", got, publicOrigin)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cb, err := cognitolocal.HostedUISignIn(ctx, a.String(), email, password)
		if err != nil {
			t.Fatalf("hosted UI: %v", err)
		}
		if !strings.HasPrefix(cb.String(), publicOrigin+"/auth/callback?") {
			t.Fatalf("the hosted UI sent the browser to %s, want %s/auth/callback", cb, publicOrigin)
		}
		done := c.navigate(cb.String())
		if done.Status != http.StatusSeeOther || done.Header.Get("Location") != "/reports/q3" {
			t.Fatalf("callback through the proxy: want 303 to /reports/q3, got %s", done)
		}
		sc := setCookie(done, "__Host-"+loginSessionName)
		if sc == nil || !sc.Secure {
			t.Errorf("behind https the session cookie should be __Host-%s; Secure, got %q", loginSessionName, done.Header.Values("Set-Cookie"))
		}
		page := c.navigate(publicOrigin + "/reports/q3")
		if page.Upstream == nil {
			t.Fatalf("signed in through the proxy, the page: %s", page)
		}
		if got, _ := url.PathUnescape(one(t, page.Upstream.authHeaders(), "x-auth-email")); got != email {
			t.Errorf("X-Auth-Email = %q, want %q", got, email)
		}
	})
}

// ---- 6. a new sign-in ends the browser's previous session ----

// TestClaimNewSignInEndsPreviousSession: "Every sign-in makes a new id, and
// any session the browser had ends." Sign in (cookie A), sign in again in
// the same cookie jar, so the callback sees A, and get cookie B: A is
// refused from then on, B works, and the store lists one session.
func TestClaimNewSignInEndsPreviousSession(t *testing.T) {
	ls, rec := newRecordedCognitoLoginSite(t, loginCognitoCaddyfile)
	email := uniqueEmail(t, "iris", loginPartnerDom)
	cognitoUser(t, ls.s, email, nil, nil)

	c := newWebClient(t)
	a := ls.signInPlain(t, c, "/one", email).wantSignedIn(t, "/one")
	first := c.navigate(ls.base + "/one")
	if first.Upstream == nil {
		t.Fatalf("signed in with cookie A: %s", first)
	}
	userID := one(t, first.Upstream.authHeaders(), "x-auth-user")
	if n := liveSessions(t, ls, userID); n != 1 {
		t.Fatalf("after the first sign-in the user has %d sessions, want 1", n)
	}

	p := ls.signInPlain(t, c, "/two", email)
	var sent bool
	for _, ck := range p.before {
		sent = sent || ck.Name == loginSessionName && ck.Value == a
	}
	if !sent {
		t.Fatalf("the second sign-in's callback was not sent cookie A (cookies: %v)", p.before)
	}
	b := p.wantSignedIn(t, "/two")
	if b == a {
		t.Fatalf("the second sign-in kept the session id")
	}

	old := newWebClient(t)
	old.setCookie(ls.base, loginSessionName, a)
	wantSignInRedirect(t, ls.base, old.navigate(ls.base+"/one"), "/one")
	wantUnauthenticatedJSON(t, old.api(http.MethodGet, ls.base+"/api/x", nil), "/api/x")
	if r := old.api(http.MethodGet, ls.base+"/auth/me", nil); r.Status != http.StatusUnauthorized {
		t.Errorf("/auth/me with cookie A after the new sign-in: want 401, got %s", r)
	}

	fresh := newWebClient(t)
	fresh.setCookie(ls.base, loginSessionName, b)
	for _, w := range []*webClient{c, fresh} {
		r := w.navigate(ls.base + "/two")
		if r.Upstream == nil {
			t.Fatalf("cookie B: want the upstream, got %s", r)
		}
		if got := one(t, r.Upstream.authHeaders(), "x-auth-user"); got != userID {
			t.Errorf("cookie B: X-Auth-User = %q, want %q", got, userID)
		}
	}
	if n := liveSessions(t, ls, userID); n != 1 {
		t.Errorf("after signing in again in the same browser the user has %d sessions, want 1", n)
	}
	// Not asserted (the README speaks of the browser's session only): the
	// old session's refresh token, and a session in another browser.
	issued := rec.tokens()
	revoked := rec.revokedTokens()
	t.Logf("token responses %d, revocations %d (the first sign-in's refresh token revoked: %v)",
		len(issued), len(revoked), len(issued) > 0 && len(revoked) > 0 && revoked[0] == issued[0].Refresh)
	other := newWebClient(t)
	ls.signInPlain(t, other, "/", email).wantSignedIn(t, "/")
	t.Logf("a sign-in in another browser: the first browser's session B still works: %v", c.navigate(ls.base+"/two").Upstream != nil)
}

// liveSessions counts a user's sessions through the admin API.
func liveSessions(t *testing.T, ls *loginSite, userID string) int {
	t.Helper()
	status, body := (&mappedSite{caddy: ls.caddy}).admin(t, http.MethodGet, "/cognito/users/"+url.PathEscape(userID)+"/sessions", nil)
	var list []json.RawMessage
	if status != 200 || json.Unmarshal(body, &list) != nil {
		t.Fatalf("GET /cognito/users/%s/sessions: HTTP %d %s", userID, status, body)
	}
	return len(list)
}

// ---- helpers ----

// tokenRecorder is a reverse proxy in front of cognito-local's hosted-UI
// endpoints, configured as the pool's `domain`: it keeps what the token
// endpoint answered Caddy and what Caddy revoked, so tests know the real
// token values.
type tokenRecorder struct {
	srv     *httptest.Server
	mu      sync.Mutex
	issued  []issuedTokens
	revoked []string
}

type issuedTokens struct {
	Grant, Access, ID, Refresh string
}

func newTokenRecorder(t *testing.T, target string) *tokenRecorder {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rec := &tokenRecorder{}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Header.Del("Accept-Encoding") // keep answers readable
		},
		ModifyResponse: func(resp *http.Response) error {
			if resp.Request.URL.Path != "/oauth2/token" || resp.StatusCode != http.StatusOK {
				return nil
			}
			body, err := io.ReadAll(resp.Body)
			_ = resp.Body.Close() // read-only
			if err != nil {
				return err
			}
			resp.Body = io.NopCloser(bytes.NewReader(body))
			var tr struct {
				Access  string `json:"access_token"`
				ID      string `json:"id_token"`
				Refresh string `json:"refresh_token"`
			}
			if json.Unmarshal(body, &tr) == nil {
				rec.mu.Lock()
				rec.issued = append(rec.issued, issuedTokens{Grant: resp.Request.Header.Get("X-Recorded-Grant"), Access: tr.Access, ID: tr.ID, Refresh: tr.Refresh})
				rec.mu.Unlock()
			}
			return nil
		},
	}
	rec.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && (r.URL.Path == "/oauth2/token" || r.URL.Path == "/oauth2/revoke") {
			body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
			_ = r.Body.Close() // read-only
			r.Body = io.NopCloser(bytes.NewReader(body))
			form, _ := url.ParseQuery(string(body))
			if r.URL.Path == "/oauth2/revoke" {
				rec.mu.Lock()
				rec.revoked = append(rec.revoked, form.Get("token"))
				rec.mu.Unlock()
			} else {
				r.Header.Set("X-Recorded-Grant", form.Get("grant_type")) // read back in ModifyResponse
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(rec.srv.Close)
	return rec
}

func (rec *tokenRecorder) tokens() []issuedTokens {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]issuedTokens(nil), rec.issued...)
}

func (rec *tokenRecorder) revokedTokens() []string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]string(nil), rec.revoked...)
}

// newRecordedCognitoLoginSite is newCognitoLoginSite with the hosted-UI
// domain behind a tokenRecorder. Users in loginPartnerDom are admitted.
func newRecordedCognitoLoginSite(t *testing.T, caddyfile string) (*loginSite, *tokenRecorder) {
	t.Helper()
	s := getStack(t)
	cognitolocal.RequirePatched(t)
	port, err := cognitolocal.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	client := newAppClient(t, s, "claims-", fmt.Sprintf("http://127.0.0.1:%d", port))
	rec := newTokenRecorder(t, s.cl.URL)
	ls := newLoginSite(t, s, port, caddyfile, map[string]string{
		"@ISSUER@": s.issuer, "@CLIENT_ID@": client.ClientID, "@CLIENT_SECRET@": client.ClientSecret,
		"@DOMAIN@": rec.srv.URL, "@PARTNERS@": loginPartnerDom, "@REFUSED@": loginRefused,
	})
	ls.client, ls.issuer = client, s.issuer
	return ls, rec
}

// jwtShape is the start of a compact JWS with JSON header and payload.
var jwtShape = regexp.MustCompile(`eyJ[A-Za-z0-9_-]*\.eyJ[A-Za-z0-9_-]*\.`)

// secretSet is what must not show up somewhere: exact values, and opaque
// tokens known only by the hash oidc-provider's event log gives of them.
type secretSet struct {
	named  []namedSecret
	hashed map[string]string // opHash(value) → kind
}

type namedSecret struct{ what, value string }

func (ss *secretSet) add(what, value string) {
	if value != "" {
		ss.named = append(ss.named, namedSecret{what, value})
	}
}

// addTokens adds a token response's tokens, and their signatures on their
// own (a log could cut a token at its dots).
func (ss *secretSet) addTokens(tk issuedTokens) {
	for what, v := range map[string]string{"the access token": tk.Access, "the ID token": tk.ID, "the refresh token": tk.Refresh} {
		ss.add(what, v)
		if sig := jwtSignature(v); sig != "" {
			ss.add(what+"'s signature", sig)
		}
	}
}

func (ss *secretSet) addHashed(hash, kind string) {
	if ss.hashed == nil {
		ss.hashed = map[string]string{}
	}
	ss.hashed[hash] = kind
}

func (ss *secretSet) countHashed(kind string) int {
	n := 0
	for _, k := range ss.hashed {
		if k == kind {
			n++
		}
	}
	return n
}

// opaqueRun is a run of base64url characters as long as oidc-provider's
// opaque tokens (256 bits: 43 characters) or longer.
var opaqueRun = regexp.MustCompile(`[A-Za-z0-9_-]{43,}`)

// leaks names every secret found in text, except the ones named in skip.
func (ss *secretSet) leaks(text string, skip ...string) []string {
	var out []string
	has := map[string]bool{}
	note := func(what string) {
		for _, s := range skip {
			if s == what {
				return
			}
		}
		if !has[what] {
			has[what] = true
			out = append(out, what)
		}
	}
	for _, s := range ss.named {
		if strings.Contains(text, s.value) {
			note(s.what)
		}
	}
	if m := jwtShape.FindString(text); m != "" {
		note("a JWT-shaped value " + abbrev(m))
	}
	if len(ss.hashed) > 0 {
		for _, run := range opaqueRun.FindAllString(text, -1) {
			for i := 0; i+43 <= len(run); i++ {
				if kind, ok := ss.hashed[opHash(run[i:i+43])]; ok {
					note("an oidc-provider " + kind)
				}
			}
		}
	}
	return out
}

// opHash is how testenv/oidc-provider-server.js names a token in its events.
func opHash(v string) string {
	sum := sha256.Sum256([]byte(v))
	return hex.EncodeToString(sum[:])[:12]
}

// tokenHashes returns the hashes of every access token, refresh token and
// authorization code the provider has saved so far, with their kind.
func (op *opServer) tokenHashes() map[string]string {
	out := map[string]string{}
	for _, e := range op.events() {
		switch e.Kind {
		case "AccessToken", "RefreshToken", "AuthorizationCode":
			if e.ID != "" {
				out[e.ID] = e.Kind
			}
		}
	}
	return out
}

// opSignInPlain signs in at oidc-provider's devInteractions pages (any
// login, any password, then consent) with the browser-like net/http
// client, following every redirect up to the site's callback.
func (ls *loginSite) opSignInPlain(t *testing.T, c *webClient, op *opServer, next, login string) plainSignIn {
	t.Helper()
	var p plainSignIn
	p.authorize = ls.startSignIn(t, c, next)
	if !strings.HasPrefix(p.authorize.String(), op.issuer+"/auth?") {
		t.Fatalf("/auth/login sent the browser to %s, want %s/auth", p.authorize, op.issuer)
	}
	u := p.authorize
	for hop := 0; hop < 16; hop++ {
		if strings.HasPrefix(u.String(), ls.base+"/auth/callback?") {
			p.callback = u
			p.before = c.cookies(ls.base)
			p.answer = c.navigate(u.String())
			return p
		}
		r := c.navigate(u.String())
		if r.Status == http.StatusFound || r.Status == http.StatusSeeOther {
			u = u.ResolveReference(location(t, r))
			continue
		}
		if r.Status != http.StatusOK {
			t.Fatalf("oidc-provider at %s: %s", u, r)
		}
		action, form := pageForm(t, u, r.Body)
		switch form.Get("prompt") {
		case "login":
			form.Set("login", login)
			form.Set("password", "anything at all")
		case "consent":
		default:
			t.Fatalf("oidc-provider page %s has no login or consent form: %s", u, r.Body)
		}
		r = c.postForm(action.String(), form)
		if r.Status != http.StatusFound && r.Status != http.StatusSeeOther {
			t.Fatalf("POST %s: %s", action, r)
		}
		u = action.ResolveReference(location(t, r))
	}
	t.Fatalf("no callback to %s after 16 hops (last %s)", ls.base, u)
	return p
}

var formTag = regexp.MustCompile(`(?is)<form\b[^>]*>`)

// pageForm returns the action (resolved against page) and the named
// inputs of the first form of an HTML page.
func pageForm(t *testing.T, page *url.URL, body []byte) (*url.URL, url.Values) {
	t.Helper()
	tag := formTag.Find(body)
	if tag == nil {
		t.Fatalf("no form at %s: %s", page, body)
	}
	var action string
	for _, m := range attribute.FindAllStringSubmatch(string(tag), -1) {
		if strings.ToLower(m[1]) == "action" {
			action = html.UnescapeString(m[2])
		}
	}
	form := url.Values{}
	for _, in := range inputTag.FindAllString(string(body), -1) {
		attrs := map[string]string{}
		for _, m := range attribute.FindAllStringSubmatch(in, -1) {
			attrs[strings.ToLower(m[1])] = html.UnescapeString(m[2])
		}
		if attrs["name"] != "" {
			form.Set(attrs["name"], attrs["value"])
		}
	}
	a, err := page.Parse(action)
	if err != nil {
		t.Fatalf("form action %q at %s: %v", action, page, err)
	}
	return a, form
}

// logoutPlain signs out with the confirmation page's CSRF-protected form
// and returns where the site sends the browser (the provider's logout).
func (ls *loginSite) logoutPlain(t *testing.T, c *webClient, next string) *url.URL {
	t.Helper()
	pageURL := mustParse(t, ls.base+"/auth/logout?next="+url.QueryEscape(next))
	page := c.navigate(pageURL.String())
	if page.Status != 200 {
		t.Fatalf("GET /auth/logout: %s", page)
	}
	action, form := pageForm(t, pageURL, page.Body)
	if form.Get("csrf") == "" {
		t.Fatalf("the logout page has no csrf field: %s", page.Body)
	}
	r := c.postForm(action.String(), form, "Origin", ls.base)
	if r.Status != http.StatusSeeOther {
		t.Fatalf("POST /auth/logout: want 303, got %s", r)
	}
	return location(t, r)
}

// opEndSession confirms sign-out at oidc-provider's end_session page and
// returns where it sends the browser back to.
func opEndSession(t *testing.T, c *webClient, endSession *url.URL) *url.URL {
	t.Helper()
	u := endSession
	for hop := 0; hop < 8; hop++ {
		r := c.navigate(u.String())
		switch r.Status {
		case http.StatusFound, http.StatusSeeOther:
			u = u.ResolveReference(location(t, r))
			continue
		case http.StatusOK:
		default:
			t.Fatalf("end_session at %s: %s", u, r)
		}
		action, form := pageForm(t, u, r.Body)
		form.Set("logout", "yes") // the "Yes, sign me out" button
		r = c.postForm(action.String(), form)
		if r.Status != http.StatusFound && r.Status != http.StatusSeeOther {
			t.Fatalf("confirming sign-out at %s: %s", action, r)
		}
		return action.ResolveReference(location(t, r))
	}
	t.Fatalf("end_session: too many redirects from %s", endSession)
	return nil
}

// pollUntil calls cond until it holds, at most for limit.
func pollUntil(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %v", what, limit)
		}
		time.Sleep(250 * time.Millisecond) // poll interval
	}
}

// waitOutput polls Caddy's output until cond holds.
func waitOutput(t *testing.T, ls *loginSite, limit time.Duration, what string, cond func(string) bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond(ls.caddy.Output()) {
		if time.Now().After(deadline) {
			t.Fatalf("Caddy logged no %s within %v", what, limit)
		}
		time.Sleep(100 * time.Millisecond) // poll interval
	}
}

func fetchBody(t *testing.T, u string) []byte {
	t.Helper()
	resp, err := http.Get(u) //nolint:gosec // G107: a loopback URL of the test stack
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }() // read-only
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: HTTP %d %v", u, resp.StatusCode, err)
	}
	return b
}

func mustParse(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// jwtHeader decodes a compact JWS's header.
func jwtHeader(tok string) (map[string]any, error) {
	h, _, _ := strings.Cut(tok, ".")
	b, err := base64URLDecode(h)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	return out, json.Unmarshal(b, &out)
}

// containsToken: text holds tok, or its signature segment on its own.
func containsToken(text, tok string) bool {
	if tok == "" {
		return false
	}
	sig := jwtSignature(tok)
	return strings.Contains(text, tok) || sig != "" && strings.Contains(text, sig)
}

// jwtSignature is the third segment of a compact JWS ("" when there is none).
func jwtSignature(tok string) string {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 || len(parts[2]) < 16 {
		return ""
	}
	return parts[2]
}

func base64URLDecode(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(s)
}

// abbrev shortens a value for a message.
func abbrev(s string) string {
	if len(s) > 60 {
		return s[:40] + "…" + s[len(s)-12:]
	}
	return s
}
