package caddycognito

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-cognito/caddy-cognito/internal/standin"
	"github.com/caddyserver/caddy/v2/caddytest"
)

// loginSite is Caddy in-process with cognito_login in front of an echo
// upstream, signing in against oidc-provider (OpenID discovery).
type loginSite struct {
	tester   *caddytest.Tester
	upstream *echoUpstream
	issuer   string
	dbPath   string
}

const loginSiteURL = "http://localhost:9080"

func startLoginSite(t *testing.T, loginOptions string, providerEnv ...string) *loginSite {
	return startLoginSiteWith(t, "", "", loginOptions, providerEnv...)
}

// startLoginSiteWith also puts cognitoExtra into the global cognito option
// and siteExtra into the site, before cognito_login.
func startLoginSiteWith(t *testing.T, cognitoExtra, siteExtra, loginOptions string, providerEnv ...string) *loginSite {
	t.Helper()
	node, script := standin.NodeScript(t, "oidc-provider-server.js")
	if _, err := os.Stat(filepath.Join(filepath.Dir(script), "node_modules", "oidc-provider")); err != nil {
		standin.Missing(t, "oidc-provider is not installed in testenv/node_modules")
	}
	port := standin.FreeLoopbackPort(t)
	issuer := "http://127.0.0.1:" + strconv.Itoa(port)
	standin.StartNode(t, node, script, append([]string{
		"PORT=" + strconv.Itoa(port), "CLIENT_ID=rp", "CLIENT_SECRET=rp-secret",
		"REDIRECT_URI=" + loginSiteURL + "/auth/callback",
		"POST_LOGOUT_REDIRECT_URI=" + loginSiteURL + "/auth/logout/done",
	}, providerEnv...), issuer+"/.well-known/openid-configuration")

	s := &loginSite{upstream: newEchoUpstream(t), issuer: issuer, dbPath: filepath.Join(t.TempDir(), "cognito.db")}
	s.tester = caddytest.NewTester(t)
	s.tester.InitServer(fmt.Sprintf(`
	{
		admin localhost:2999
		http_port 9080
		https_port 9443
		skip_install_trust
		cognito {
			store sqlite %s
			pool main {
				issuer %s
				client_id rp
				client_secret rp-secret
				jwks_url %s/jwks
			}
			%s
		}
	}
	%s {
		%s
		cognito_login {
			secret this-is-a-test-secret-of-32-characters
			scopes openid email profile offline_access
			%s
		}
		reverse_proxy %s
	}`, s.dbPath, issuer, issuer, cognitoExtra, loginSiteURL, siteExtra, loginOptions, strings.TrimPrefix(s.upstream.URL, "http://")), "caddyfile")
	return s
}

// browser is an HTTP client with a cookie jar that follows redirects like
// a browser does and never leaves loopback.
func newBrowser(t *testing.T) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 15 * time.Second, Transport: ownTransport(t)}
}

// ownTransport is a connection pool of the test's own. With the shared
// http.DefaultTransport, a connection kept alive from an earlier test could
// be served by that test's Caddy server, which a config load shuts down
// gracefully, still answering on connections that were busy: the answer
// would come from the old config.
func ownTransport(t *testing.T) *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

// get sends a browser navigation (Accept: text/html).
func get(t *testing.T, c *http.Client, u string) (*reply, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Accept", "text/html")
	req.Header.Set("Sec-Fetch-Mode", "navigate")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }() // read-only: nothing to flush
	return readReply(resp)
}

// signIn fills oidc-provider's devInteractions forms (any password) as
// login, starting from whatever page the last response showed, and returns
// the response the browser finally lands on.
func signIn(t *testing.T, c *http.Client, resp *reply, page, login string) (*reply, string) {
	t.Helper()
	for step := 0; step < 6; step++ {
		if resp.Request.URL.Host == "localhost:9080" {
			return resp, page // back on the site
		}
		m := standin.FormAction.FindStringSubmatch(page)
		if resp.StatusCode != 200 || m == nil {
			t.Fatalf("unexpected provider page %d at %s:\n%.2000s", resp.StatusCode, resp.Request.URL, page)
		}
		action, _ := resp.Request.URL.Parse(m[1])
		form := url.Values{"prompt": {"consent"}}
		if strings.Contains(page, `name="prompt" value="login"`) {
			form = url.Values{"prompt": {"login"}, "login": {login}, "password": {"anything"}}
		}
		r, err := c.PostForm(action.String(), form)
		if err != nil {
			t.Fatal(err)
		}
		resp, page = readReply(r)
		_ = r.Body.Close() // read-only
	}
	t.Fatal("sign-in did not come back to the site")
	return nil, ""
}

func cookieOf(c *http.Client, name string) string {
	u, _ := url.Parse(loginSiteURL)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == name {
			return ck.Value
		}
	}
	return ""
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// TestLoginFlowOIDCProvider signs in through discovery, PKCE, state and
// nonce; checks what the upstream and /auth/me see; then signs out and
// shows the old session cookie is dead.
func TestLoginFlowOIDCProvider(t *testing.T) {
	s := startLoginSite(t, `admit email_domain example.com`)
	b := newBrowser(t)

	// An API call without a session: 401 JSON naming the sign-in URL.
	req, _ := http.NewRequest(http.MethodGet, loginSiteURL+"/api/items?x=1", nil)
	req.Header.Set("Accept", "application/json")
	hr, err := b.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var unauth map[string]string
	_ = json.NewDecoder(hr.Body).Decode(&unauth) // a bad body fails the check below
	_ = hr.Body.Close()                          // read-only
	if hr.StatusCode != 401 || unauth["error"] != "unauthenticated" || unauth["login_url"] != "/auth/login?next=%2Fapi%2Fitems%3Fx%3D1" {
		t.Fatalf("API without session: %d %v", hr.StatusCode, unauth)
	}

	// A planted session cookie (fixation) is replaced at sign-in.
	site, _ := url.Parse(loginSiteURL)
	planted := strings.Repeat("A", 43)
	b.Jar.SetCookies(site, []*http.Cookie{{Name: "cognito_session", Value: planted, Path: "/"}}) //nolint:gosec // G124: a cookie planted in the test client's jar, not one a server sets

	resp, page := get(t, b, loginSiteURL+"/docs/page?x=1")
	resp, page = signIn(t, b, resp, page, "alice")
	if resp.StatusCode != 200 || page != "upstream ok" || resp.Request.URL.Path != "/docs/page" || resp.Request.URL.RawQuery != "x=1" {
		t.Fatalf("after sign-in: %d at %s: %.300s", resp.StatusCode, resp.Request.URL, page)
	}
	h, _ := s.upstream.seen()
	if h.Get("X-Auth-Username") != "alice" || h.Get("X-Auth-Email") != "alice@example.com" || !strings.HasPrefix(h.Get("X-Auth-User"), "u_") {
		t.Errorf("upstream identity headers: %v", h)
	}
	if strings.Contains(h.Get("Cookie"), "cognito_") {
		t.Errorf("the upstream got the plugin's cookies: %q", h.Get("Cookie"))
	}
	sid := cookieOf(b, "cognito_session")
	if sid == "" || sid == planted {
		t.Fatalf("session cookie after sign-in: %q (planted %q)", sid, planted)
	}

	// /auth/me shows the local user and the identity.
	req, _ = http.NewRequest(http.MethodGet, loginSiteURL+"/auth/me", nil)
	hr, err = b.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var me struct {
		User     struct{ ID, Username, Email string }
		Identity struct {
			Issuer, Sub   string
			EmailVerified bool `json:"email_verified"`
		}
		Session struct {
			CreatedAt time.Time `json:"created_at"`
		}
	}
	_ = json.NewDecoder(hr.Body).Decode(&me) // a bad body fails the check below
	_ = hr.Body.Close()                      // read-only
	if hr.StatusCode != 200 || me.User.Username != "alice" || me.User.ID != h.Get("X-Auth-User") ||
		me.Identity.Issuer != s.issuer || me.Identity.Sub != "alice" || !me.Identity.EmailVerified || me.Session.CreatedAt.IsZero() {
		t.Errorf("/auth/me: %d %+v", hr.StatusCode, me)
	}

	// force_logout from another site's link: a confirmation page whose
	// form goes on to a new sign-in; the session survives the GET.
	req, _ = http.NewRequest(http.MethodGet, loginSiteURL+"/auth/login?force_logout=true&next=%2Fdocs%2Fother", nil)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	req.Header.Set("Sec-Fetch-Mode", "navigate")
	hr, err = noRedirects(b).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	rr, body := readReply(hr)
	_ = hr.Body.Close() // read-only
	if rr.StatusCode != 200 || csrfField.FindStringSubmatch(body) == nil || !strings.Contains(body, `value="/auth/login?next=%2Fdocs%2Fother"`) {
		t.Errorf("force_logout GET: %d %.600s, want the sign-out confirmation going on to sign-in", rr.StatusCode, body)
	}
	if _, page = get(t, b, loginSiteURL+"/docs/page"); page != "upstream ok" {
		t.Fatal("GET /auth/login?force_logout=true signed the user out")
	}

	// Identity names smuggled as request trailers never reach the upstream.
	pr, pw := io.Pipe()
	go func() {
		_, _ = pw.Write([]byte("some body")) // fails only if the reader gave up
		_ = pw.Close()
	}()
	req, _ = http.NewRequest(http.MethodPost, loginSiteURL+"/docs/upload", pr)
	req.Header.Set("Accept", "application/json")
	req.Trailer = http.Header{"X-Auth-User": {"admin"}, "X_auth_roles": {"admin"}, "X-Checksum": {"abc"}}
	if hr, err = b.Do(req); err != nil {
		t.Fatal(err)
	}
	_ = hr.Body.Close() // read-only
	if tr := s.upstream.trailers(); hr.StatusCode != 200 || tr.Get("X-Auth-User") != "" || tr.Get("X_auth_roles") != "" || tr.Get("X-Checksum") != "abc" {
		t.Errorf("trailers at the upstream: %d %v, want X-Checksum only", hr.StatusCode, tr)
	}

	// Logout: a GET only asks; a POST without the page's token is refused.
	resp, page = get(t, b, loginSiteURL+"/auth/logout")
	m := csrfField.FindStringSubmatch(page)
	if resp.StatusCode != 200 || m == nil {
		t.Fatalf("logout page: %d %.500s", resp.StatusCode, page)
	}
	if _, page = get(t, b, loginSiteURL+"/docs/page"); page != "upstream ok" {
		t.Fatal("the logout page's GET signed the user out")
	}
	noFollow := *b
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	hr, err = noFollow.PostForm(loginSiteURL+"/auth/logout", url.Values{"csrf": {"forged"}})
	if err != nil {
		t.Fatal(err)
	}
	_ = hr.Body.Close() // read-only
	if hr.StatusCode != 403 {
		t.Fatalf("logout with a forged token: %d, want 403", hr.StatusCode)
	}
	hr, err = noFollow.PostForm(loginSiteURL+"/auth/logout", url.Values{"csrf": {m[1]}})
	if err != nil {
		t.Fatal(err)
	}
	_ = hr.Body.Close() // read-only
	loc, _ := url.Parse(hr.Header.Get("Location"))
	if hr.StatusCode != 303 || loc.Path != "/session/end" || loc.Query().Get("post_logout_redirect_uri") != loginSiteURL+"/auth/logout/done" ||
		loc.Query().Get("client_id") != "rp" {
		t.Fatalf("logout: %d to %s, want 303 to the end_session_endpoint", hr.StatusCode, loc)
	}

	// The old cookie, replayed by anyone, is dead.
	old := newBrowser(t)
	old.CheckRedirect = noFollow.CheckRedirect
	old.Jar.SetCookies(site, []*http.Cookie{{Name: "cognito_session", Value: sid, Path: "/"}}) //nolint:gosec // G124: a cookie planted in the test client's jar, not one a server sets
	resp, _ = get(t, old, loginSiteURL+"/docs/page")
	if resp.StatusCode != 302 || !strings.HasPrefix(resp.Header.Get("Location"), "/auth/login?next=") {
		t.Errorf("old session cookie after logout: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// noRedirects returns a copy of c that stops at the first redirect.
func noRedirects(c *http.Client) *http.Client {
	n := *c
	n.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &n
}

// TestLoginCallbackAttacks: a forged or stale state restarts sign-in (once),
// a replayed code makes no session, `next` never leaves the site, forwarded
// headers from an untrusted client do not steer the redirect URI, and the
// provider's error text is never echoed.
func TestLoginCallbackAttacks(t *testing.T) {
	s := startLoginSite(t, `admit email_domain example.com`)
	_ = s
	b := newBrowser(t)
	nb := noRedirects(b)

	resp, _ := get(t, nb, loginSiteURL+"/auth/callback?code=abc&state=forged")
	if resp.StatusCode != 302 || resp.Header.Get("Location") != "/auth/login?attempt=2&next=%2F" {
		t.Errorf("forged state: %d %s, want a restart", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, page := get(t, nb, loginSiteURL+"/auth/callback?code=abc&state=forged.r") // a restart's state ends in .r
	if resp.StatusCode != 400 || !strings.Contains(page, "did not keep this site") {
		t.Errorf("forged state of a restart: %d, want the cookie page\n%.300s", resp.StatusCode, page)
	}
	resp, page = get(t, nb, loginSiteURL+"/auth/callback?error=access_denied&error_description=%3Cscript%3Ealert(1)%3C/script%3E&state=x")
	if resp.StatusCode != 400 || strings.Contains(page, "<script>alert") || strings.Contains(page, "alert(1)") || !strings.Contains(page, "cancelled") {
		t.Errorf("provider error: %d\n%.600s", resp.StatusCode, page)
	}

	// The login redirect: its redirect_uri is the site as Caddy sees it,
	// whatever an untrusted client says in X-Forwarded-*; next is refused
	// unless it stays on the site.
	for _, next := range []string{"//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"} {
		req, _ := http.NewRequest(http.MethodGet, loginSiteURL+"/auth/login?next="+url.QueryEscape(next), nil)
		req.Header.Set("X-Forwarded-Host", "evil.example")
		req.Header.Set("X-Forwarded-Proto", "https")
		resp, err := nb.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close() // read-only
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != 302 || loc.Query().Get("redirect_uri") != loginSiteURL+"/auth/callback" ||
			loc.Query().Get("code_challenge_method") != "S256" || loc.Query().Get("nonce") == "" || loc.Query().Get("state") == "" {
			t.Fatalf("login: %d %s", resp.StatusCode, loc)
		}
		var lc *http.Cookie
		for _, c := range resp.Cookies() {
			if strings.HasPrefix(c.Name, "cognito_login_") {
				lc = c
			}
		}
		if lc == nil || !lc.HttpOnly || lc.SameSite != http.SameSiteLaxMode || lc.Path != "/" || lc.MaxAge <= 0 || lc.MaxAge > 600 {
			t.Fatalf("login cookie %+v", lc)
		}
	}

	// A full sign-in with an open-redirect next lands on "/", and a replay
	// of its callback (same state cookie, same code) creates nothing.
	resp, page = get(t, b, loginSiteURL+"/auth/login?next="+url.QueryEscape("//evil.example/"))
	var callback *url.URL
	var loginCookies []*http.Cookie
	b.CheckRedirect = func(req *http.Request, _ []*http.Request) error {
		if req.URL.Path == "/auth/callback" {
			callback = req.URL
			u, _ := url.Parse(loginSiteURL)
			loginCookies = b.Jar.Cookies(u)
		}
		return nil
	}
	resp, page = signIn(t, b, resp, page, "bob")
	b.CheckRedirect = nil
	if resp.Request.URL.String() != loginSiteURL+"/" || page != "upstream ok" {
		t.Fatalf("sign-in with next=//evil.example/ ended at %s", resp.Request.URL)
	}
	var sessionCookie *http.Cookie
	for _, c := range resp.Request.Response.Cookies() {
		if c.Name == "cognito_session" {
			sessionCookie = c
		}
	}
	if sessionCookie == nil || !sessionCookie.HttpOnly || sessionCookie.SameSite != http.SameSiteLaxMode || sessionCookie.Path != "/" || sessionCookie.Secure {
		t.Errorf("session cookie flags on http: %+v", sessionCookie)
	}
	replay := newBrowser(t)
	replay.CheckRedirect = nb.CheckRedirect
	site, _ := url.Parse(loginSiteURL)
	for _, c := range loginCookies {
		if strings.HasPrefix(c.Name, "cognito_login_") {
			replay.Jar.SetCookies(site, []*http.Cookie{{Name: c.Name, Value: c.Value, Path: "/"}}) //nolint:gosec // G124: a cookie planted in the test client's jar, not one a server sets
		}
	}
	resp, _ = get(t, replay, callback.String())
	if resp.StatusCode != 302 || !strings.HasPrefix(resp.Header.Get("Location"), "/auth/login?attempt=2") {
		t.Errorf("replayed code: %d %s, want a restart", resp.StatusCode, resp.Header.Get("Location"))
	}
	if cookieOf(replay, "cognito_session") != "" {
		t.Error("a replayed code made a session")
	}
}

// TestSignOutEverywhere: the admin API lists a user's sessions (without
// secrets) and ends them all; the browser is asked to sign in again at
// its next request.
func TestSignOutEverywhere(t *testing.T) {
	startLoginSite(t, `admit any`)
	b := newBrowser(t)
	resp, page := get(t, b, loginSiteURL+"/")
	if resp, page = signIn(t, b, resp, page, "erin"); page != "upstream ok" {
		t.Fatalf("sign-in: %d %.300s", resp.StatusCode, page)
	}
	var sessions []map[string]any
	if code := adminJSON(t, "GET", "/cognito/users/erin/sessions", nil, &sessions); code != 200 || len(sessions) != 1 {
		t.Fatalf("sessions: %d %v", code, sessions)
	}
	for k := range sessions[0] {
		if strings.Contains(k, "hash") || strings.Contains(k, "token") {
			t.Errorf("a session listing shows %q", k)
		}
	}
	var ended map[string]int
	if code := adminJSON(t, "DELETE", "/cognito/users/erin/sessions", nil, &ended); code != 200 || ended["ended"] != 1 {
		t.Fatalf("sign-out everywhere: %d %v", code, ended)
	}
	resp, _ = get(t, noRedirects(b), loginSiteURL+"/")
	if resp.StatusCode != 302 || !strings.HasPrefix(resp.Header.Get("Location"), "/auth/login") {
		t.Errorf("after sign-out everywhere: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	// The audit log tells the story: admitted, signed in, signed out by the admin API.
	var user struct{ ID string }
	adminJSON(t, "GET", "/cognito/users/erin", nil, &user)
	var events []struct{ Actor, Action string }
	if code := adminJSON(t, "GET", "/cognito/audit?target="+user.ID, nil, &events); code != 200 {
		t.Fatalf("audit: %d", code)
	}
	var got []string
	for i := len(events) - 1; i >= 0; i-- {
		got = append(got, events[i].Actor+" "+events[i].Action)
	}
	want := []string{"login:any user.create", "login:any identity.link", user.ID + " user.login", "admin-api session.revoke_all"}
	if strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Errorf("audit for erin:\n got %v\nwant %v", got, want)
	}
}
