package integration

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/caddy-cognito/caddy-cognito/integration/internal/caddyproc"
	"github.com/caddy-cognito/caddy-cognito/integration/internal/cognitolocal"
)

// Browser sign-in (`cognito_login`) end to end: the xcaddy-built binary in
// front of the echo upstream, cognito-local's hosted UI (patched by
// testenv/patch-cognito-local.js to echo the nonce and to offer /logout and
// /oauth2/revoke like Cognito) or oidc-provider, and a real chromium that
// types into the sign-in forms.
//
//	login_test.go           sites, users, and checks of what the handler answers
//	login_browser_test.go   chromium through testenv/browser-login.js
//	login_web_test.go       a browser-like net/http client, hosted-UI sign-in
//	login_cognito_test.go   chromium vs cognito-local's hosted UI
//	login_oidc_test.go      chromium vs oidc-provider: discovery, refresh, RP logout
//	login_security_test.go  attacks on the endpoints with net/http

const (
	loginRefused     = "No account here: ask the site's owner for an invitation."
	loginSessionName = "cognito_session"
	loginPartnerDom  = "partners.example.org"
)

// loginCognitoCaddyfile: /admin/* needs Cognito group admins; everything
// else any signed-in user. First sign-ins are admitted by sso_migration
// (custom:from_sso = "1" links to the local user of the same username) and
// by verified e-mail in loginPartnerDom; anyone else sees loginRefused.
const loginCognitoCaddyfile = `{
	admin {$CADDY_ADMIN}
	@AUTO_HTTPS@
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

@SCHEME@://127.0.0.1:@PORT@ {
	@TLS@
	handle /admin/* {
		cognito_login {
			secret @SECRET@
			idle_timeout 2h
			session_lifetime 24h
			require group admins
		}
		reverse_proxy @UPSTREAM@
	}
	handle {
		cognito_login {
			secret @SECRET@
			idle_timeout 2h
			session_lifetime 24h
			admit sso_migration
			admit email_domain @PARTNERS@
			refused_message "@REFUSED@"
		}
		reverse_proxy @UPSTREAM@
	}
}
`

// loginSite is one Caddy with cognito_login, its identity store and the
// app client it signs in with.
type loginSite struct {
	t       *testing.T
	s       *stack
	bin     string
	dir     string
	file    string // the Caddyfile (the CLI reads it too)
	port    int
	base    string // http://127.0.0.1:<port>
	caddy   *caddyproc.Caddy
	cliHome string
	issuer  string
	// cognito-local sites: the app client with callback and sign-out URLs.
	client cognitolocal.AppClient
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// newLoginSite starts Caddy on caddyfile, where @DB@, @PORT@, @UPSTREAM@,
// @SECRET@ and the keys of vars are replaced. port 0 picks a free one.
// @SCHEME@ is http unless vars say https; @AUTO_HTTPS@ and @TLS@ are
// "auto_https off" and nothing unless vars say otherwise.
func newLoginSite(t *testing.T, s *stack, port int, caddyfile string, vars map[string]string) *loginSite {
	t.Helper()
	ls := &loginSite{t: t, s: s, bin: needCaddy(t), dir: t.TempDir(), port: port}
	ls.file = filepath.Join(ls.dir, "Caddyfile")
	ls.cliHome = filepath.Join(ls.dir, "cli-home")
	if err := os.MkdirAll(ls.cliHome, 0o750); err != nil {
		t.Fatal(err)
	}
	if ls.port == 0 {
		var err error
		if ls.port, err = cognitolocal.FreePort(); err != nil {
			t.Fatal(err)
		}
	}
	scheme := "http"
	if vars["@SCHEME@"] == "https" {
		scheme = "https"
	}
	ls.base = fmt.Sprintf("%s://127.0.0.1:%d", scheme, ls.port)
	var pairs []string // the first pair for a key wins: vars, then defaults
	for k, v := range vars {
		pairs = append(pairs, k, v)
	}
	pairs = append(pairs, "@DB@", filepath.Join(ls.dir, "cognito.db"), "@PORT@", fmt.Sprint(ls.port),
		"@UPSTREAM@", s.upstream.URL, "@SECRET@", randomHex(t, 24),
		"@SCHEME@", "http", "@AUTO_HTTPS@", "auto_https off", "@TLS@", "")
	text := strings.NewReplacer(pairs...).Replace(caddyfile)
	if strings.Contains(text, "@") && regexp.MustCompile(`@[A-Z_]+@`).MatchString(text) {
		t.Fatalf("Caddyfile has unreplaced placeholders:\n%s", text)
	}
	if err := os.WriteFile(ls.file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := caddyproc.Start(ctx, ls.bin, ls.dir, text)
	if err != nil {
		t.Fatalf("starting caddy with cognito_login: %v", err)
	}
	ls.caddy = c
	t.Cleanup(func() {
		if t.Failed() {
			out := c.Output()
			if len(out) > 8000 {
				out = "…" + out[len(out)-8000:]
			}
			t.Logf("the login site's caddy printed:\n%s", out)
		}
		c.Stop()
	})
	// The admin endpoint is up; wait until the site answers too (over
	// https with a certificate of Caddy's internal CA).
	web := newWebClient(t)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ls.base+"/", nil)
		resp, err := web.hc.Do(req)
		if err == nil {
			_ = resp.Body.Close() // read-only
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s does not answer: %v", ls.base, err)
		case <-time.After(100 * time.Millisecond): // poll interval
		}
	}
	return ls
}

// newCognitoLoginSite creates an app client of the shared pool (with a
// secret, the code flow, callback <site>/auth/callback and sign-out URL
// <site>/auth/logout/done) and a site on loginCognitoCaddyfile that signs in
// with it through cognito-local's hosted UI.
func newCognitoLoginSite(t *testing.T) *loginSite {
	t.Helper()
	return newCognitoLoginSiteScheme(t, "http")
}

// newAppClient creates a confidential app client of the stack's pool for
// browser sign-in on base (callback and sign-out URLs under /auth/).
func newAppClient(t *testing.T, s *stack, name, base string) cognitolocal.AppClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := s.cl.CreateUserPoolClient(ctx, s.pool.ID, name+randomHex(t, 4), cognitolocal.ClientOptions{
		GenerateSecret:    true,
		CallbackURLs:      []string{base + "/auth/callback"},
		LogoutURLs:        []string{base + "/auth/logout/done"},
		AllowedOAuthFlows: []string{"code"},
		OAuthScopes:       []string{"openid", "email", "profile"},
	})
	if err != nil {
		t.Fatalf("creating the app client: %v", err)
	}
	if client.ClientSecret == "" {
		t.Fatalf("app client %+v has no secret", client)
	}
	return client
}

// newCognitoLoginSiteScheme: scheme https serves the site with `tls
// internal` (Caddy's own CA, nothing installed into trust stores).
func newCognitoLoginSiteScheme(t *testing.T, scheme string) *loginSite {
	t.Helper()
	s := getStack(t)
	cognitolocal.RequirePatched(t) // the hosted UI must echo the nonce and offer /logout
	port, err := cognitolocal.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	client := newAppClient(t, s, "login-", fmt.Sprintf("%s://127.0.0.1:%d", scheme, port))
	vars := map[string]string{
		"@ISSUER@": s.issuer, "@CLIENT_ID@": client.ClientID, "@CLIENT_SECRET@": client.ClientSecret,
		"@DOMAIN@": s.cl.URL, "@PARTNERS@": loginPartnerDom, "@REFUSED@": loginRefused,
	}
	if scheme == "https" {
		vars["@SCHEME@"] = "https"
		vars["@AUTO_HTTPS@"] = "auto_https disable_redirects\n\tskip_install_trust"
		vars["@TLS@"] = "tls internal"
	}
	ls := newLoginSite(t, s, port, loginCognitoCaddyfile, vars)
	ls.client, ls.issuer = client, s.issuer
	return ls
}

// cli runs `caddy cognito …` on the site's Caddyfile, as an operator would.
func (ls *loginSite) cli(t *testing.T, args ...string) mappedRun {
	t.Helper()
	m := &mappedSite{bin: ls.bin, dir: ls.dir, file: ls.file, caddy: ls.caddy, cliHome: ls.cliHome}
	return m.cli(t, args...)
}

func (ls *loginSite) cliOK(t *testing.T, args ...string) mappedRun {
	t.Helper()
	r := ls.cli(t, args...)
	if r.code != 0 {
		t.Fatalf("want exit 0:\n%s", r)
	}
	return r
}

// localUser shows a local user (by id, username or email) with the CLI.
func (ls *loginSite) localUser(t *testing.T, who string) mappedUser {
	t.Helper()
	var u mappedUser
	mappedJSON(t, "users show --json", []byte(ls.cliOK(t, "users", "show", who, "--json").stdout), &u)
	return u
}

// cognitoUser creates a user of the shared pool with a permanent password
// and groups; attrs are extra attributes. email_verified is "true" unless
// attrs has it; attrs["email_verified"] = "" leaves the attribute out, which
// is how to get an unverified address: cognito-local 5.3 writes
// Boolean(attribute) into the ID token, so "false" would come out true.
func cognitoUser(t *testing.T, s *stack, email string, groups []string, attrs map[string]string) cognitolocal.User {
	t.Helper()
	return cognitoUserIn(t, s, s.pool.ID, email, groups, attrs)
}

// cognitoUserIn is cognitoUser in the pool poolID of the stack's cognito-local.
func cognitoUserIn(t *testing.T, s *stack, poolID, email string, groups []string, attrs map[string]string) cognitolocal.User {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	list := []map[string]string{{"Name": "email", "Value": email}}
	if _, ok := attrs["email_verified"]; !ok {
		list = append(list, map[string]string{"Name": "email_verified", "Value": "true"})
	}
	for k, v := range attrs {
		if k == "email_verified" && v == "" {
			continue
		}
		list = append(list, map[string]string{"Name": k, "Value": v})
	}
	var out struct {
		User struct {
			Username   string
			Attributes []struct{ Name, Value string }
		}
	}
	if err := s.cl.Call(ctx, "AdminCreateUser", map[string]any{
		"UserPoolId": poolID, "Username": email, "MessageAction": "SUPPRESS", "UserAttributes": list,
	}, &out); err != nil {
		t.Fatalf("AdminCreateUser %s: %v", email, err)
	}
	if err := s.cl.AdminSetUserPassword(ctx, poolID, email, password); err != nil {
		t.Fatal(err)
	}
	for _, g := range groups {
		if err := s.cl.CreateGroup(ctx, poolID, g); err != nil && !strings.Contains(err.Error(), "GroupExists") {
			t.Fatal(err)
		}
		if err := s.cl.AdminAddUserToGroup(ctx, poolID, email, g); err != nil {
			t.Fatal(err)
		}
	}
	u := cognitolocal.User{Username: out.User.Username, Attributes: map[string]string{}}
	for _, a := range out.User.Attributes {
		u.Attributes[a.Name] = a.Value
	}
	u.Sub = u.Attributes["sub"]
	if u.Sub == "" {
		t.Fatalf("AdminCreateUser %s: no sub in %+v", email, out)
	}
	return u
}

// uniqueEmail makes an address no other test (or earlier run on a kept
// cognito-local) uses.
func uniqueEmail(t *testing.T, local, domain string) string {
	return local + "." + randomHex(t, 3) + "@" + domain
}

// artifactDir is where screenshots go: $TEST_ARTIFACTS/<test name> when
// set (kept after the run), else a temporary directory.
func artifactDir(t *testing.T) string {
	t.Helper()
	root := os.Getenv("TEST_ARTIFACTS")
	if root == "" {
		return t.TempDir()
	}
	dir := filepath.Join(root, regexp.MustCompile(`[^A-Za-z0-9_.-]+`).ReplaceAllString(t.Name(), "_"))
	if err := os.MkdirAll(dir, 0o750); err != nil { //nolint:gosec // G703: under the directory the person running the tests names in TEST_ARTIFACTS
		t.Fatal(err)
	}
	return dir
}

// ---- what the handler answers ----

// loginMe is the JSON of /auth/me.
type loginMe struct {
	User struct {
		ID         string   `json:"id"`
		Username   string   `json:"username"`
		Email      string   `json:"email"`
		GivenName  string   `json:"given_name"`
		FamilyName string   `json:"family_name"`
		Roles      []string `json:"roles"`
	} `json:"user"`
	Identity struct {
		Issuer        string   `json:"issuer"`
		Sub           string   `json:"sub"`
		Username      string   `json:"username"`
		Email         string   `json:"email"`
		EmailVerified bool     `json:"email_verified"`
		Groups        []string `json:"groups"`
		Provider      string   `json:"provider"`
	} `json:"identity"`
	Session struct {
		CreatedAt         time.Time `json:"created_at"`
		IdleExpiresAt     time.Time `json:"idle_expires_at"`
		AbsoluteExpiresAt time.Time `json:"absolute_expires_at"`
	} `json:"session"`
}

// checkSessionTimes: created now, idle and absolute expiry as configured.
func checkSessionTimes(t *testing.T, me loginMe, idle, lifetime time.Duration) {
	t.Helper()
	s := me.Session
	if d := time.Since(s.CreatedAt); d < -time.Minute || d > 5*time.Minute {
		t.Errorf("session created_at %v is not about now", s.CreatedAt)
	}
	near := func(got, want time.Duration) bool { return got > want-2*time.Minute && got <= want+time.Minute }
	if d := s.AbsoluteExpiresAt.Sub(s.CreatedAt); !near(d, lifetime) {
		t.Errorf("absolute_expires_at - created_at = %v, want the session_lifetime %v", d, lifetime)
	}
	if d := s.IdleExpiresAt.Sub(s.CreatedAt); !near(d, idle) {
		t.Errorf("idle_expires_at - created_at = %v, want the idle_timeout %v", d, idle)
	}
}

// echoOf decodes the echo upstream's answer shown by the browser.
func echoOf(t *testing.T, r browserReport) *echoed {
	t.Helper()
	if r.Status != 200 {
		t.Fatalf("want the upstream's answer (200):\n%s", r)
	}
	var e echoed
	r.jsonBody(t, &e)
	if e.Method == "" || e.Headers == nil {
		t.Fatalf("the page is not the echo upstream's answer:\n%s", r)
	}
	return &e
}

// wantIdentityHeaders checks what the upstream received for a signed-in
// user: the local user id, the Cognito username, email, sub, groups (a
// percent-encoded list) and roles, each exactly once.
func wantIdentityHeaders(t *testing.T, e *echoed, userID, username, email, sub string, groups, roles []string) {
	t.Helper()
	h := e.authHeaders()
	if got := one(t, h, "x-auth-user"); got != userID {
		t.Errorf("X-Auth-User = %q, want the local user id %q", got, userID)
	}
	if username != "" {
		if got, _ := url.PathUnescape(one(t, h, "x-auth-username")); got != username {
			t.Errorf("X-Auth-Username = %q, want %q", got, username)
		}
	}
	if got, _ := url.PathUnescape(one(t, h, "x-auth-email")); got != email {
		t.Errorf("X-Auth-Email = %q, want %q", got, email)
	}
	if got := one(t, h, "x-auth-sub"); got != sub {
		t.Errorf("X-Auth-Sub = %q, want %q", got, sub)
	}
	if got := strings.Join(decodeList(t, strings.Join(h["x-auth-groups"], ",")), ","); got != strings.Join(groups, ",") {
		t.Errorf("X-Auth-Groups = %q (decoded %q), want %q", h["x-auth-groups"], got, groups)
	}
	if got := strings.Join(decodeList(t, strings.Join(h["x-auth-roles"], ",")), ","); got != strings.Join(roles, ",") {
		t.Errorf("X-Auth-Roles = %q (decoded %q), want %q", h["x-auth-roles"], got, roles)
	}
}

// wantSignInRedirect: a browser navigation without a session goes to
// <prefix>login with next = the original path and query.
func wantSignInRedirect(t *testing.T, base string, r result, next string) {
	t.Helper()
	if r.Upstream != nil || r.Status != http.StatusFound {
		t.Fatalf("want 302 to sign in, got %s (reached upstream: %v)", r, r.Upstream != nil)
	}
	loc, err := url.Parse(r.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if loc.IsAbs() && loc.Scheme+"://"+loc.Host != base {
		t.Fatalf("Location %q is not on this site", loc)
	}
	if loc.Path != "/auth/login" || loc.Query().Get("next") != next {
		t.Fatalf("Location %q, want /auth/login?next=%s", loc, url.QueryEscape(next))
	}
}

// wantUnauthenticatedJSON: an API request without a session gets 401 JSON
// naming the sign-in URL.
func wantUnauthenticatedJSON(t *testing.T, r result, next string) {
	t.Helper()
	if r.Upstream != nil || r.Status != http.StatusUnauthorized {
		t.Fatalf("want 401, got %s (reached upstream: %v)", r, r.Upstream != nil)
	}
	var body struct {
		Error    string `json:"error"`
		LoginURL string `json:"login_url"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatalf("401 body %q is not JSON: %v", r.Body, err)
	}
	lu, err := url.Parse(body.LoginURL)
	if body.Error != "unauthenticated" || err != nil || lu.Path != "/auth/login" || lu.Query().Get("next") != next {
		t.Fatalf("401 body %s, want error unauthenticated and login_url /auth/login?next=%s", r.Body, url.QueryEscape(next))
	}
}
