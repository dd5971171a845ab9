package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
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
// /oauth2/revoke like Cognito), and a real chromium that types into the
// sign-in form. This file has the shared pieces and the cognito-local
// browser test; login_oidc_test.go runs against oidc-provider and
// login_security_test.go attacks the endpoints with plain net/http.

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
	if err := os.MkdirAll(ls.cliHome, 0o755); err != nil {
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
	if err := os.WriteFile(ls.file, []byte(text), 0o644); err != nil {
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
			resp.Body.Close()
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
	base := fmt.Sprintf("%s://127.0.0.1:%d", scheme, port)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := s.cl.CreateUserPoolClient(ctx, s.pool.ID, "login-"+randomHex(t, 4), cognitolocal.ClientOptions{
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
		"UserPoolId": s.pool.ID, "Username": email, "MessageAction": "SUPPRESS", "UserAttributes": list,
	}, &out); err != nil {
		t.Fatalf("AdminCreateUser %s: %v", email, err)
	}
	if err := s.cl.AdminSetUserPassword(ctx, s.pool.ID, email, password); err != nil {
		t.Fatal(err)
	}
	for _, g := range groups {
		if err := s.cl.CreateGroup(ctx, s.pool.ID, g); err != nil && !strings.Contains(err.Error(), "GroupExists") {
			t.Fatal(err)
		}
		if err := s.cl.AdminAddUserToGroup(ctx, s.pool.ID, email, g); err != nil {
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
	dir := filepath.Join(root, strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// ---- the browser ----

// browserStep is one step of testenv/browser-login.js.
type browserStep struct {
	Name       string            `json:"name,omitempty"`
	Goto       string            `json:"goto,omitempty"`
	Fill       map[string]string `json:"fill,omitempty"`
	Click      string            `json:"click,omitempty"`
	WaitURL    string            `json:"wait_url,omitempty"`
	WaitFor    string            `json:"wait_for,omitempty"`
	Screenshot string            `json:"screenshot,omitempty"`
}

type browserCookie struct {
	Name     string  `json:"name"`
	Value    string  `json:"value"`
	Domain   string  `json:"domain"`
	Path     string  `json:"path"`
	HTTPOnly bool    `json:"httpOnly"`
	Secure   bool    `json:"secure"`
	SameSite string  `json:"sameSite"`
	Expires  float64 `json:"expires"`
}

type browserForm struct {
	Action string `json:"action"`
	Method string `json:"method"`
	Fields []struct {
		Name  string `json:"name"`
		Type  string `json:"type"`
		Value string `json:"value"`
	} `json:"fields"`
}

// field is the value of a hidden field, and whether the form has it.
func (f browserForm) field(name string) (string, bool) {
	for _, x := range f.Fields {
		if x.Name == name {
			return x.Value, true
		}
	}
	return "", false
}

// browserReport is what the browser showed after one step.
type browserReport struct {
	Name        string          `json:"name"`
	URL         string          `json:"url"`
	Title       string          `json:"title"`
	Status      int             `json:"status"`
	Text        string          `json:"text"`
	Forms       []browserForm   `json:"html_forms"`
	Navigations []browserNav    `json:"navigations"`
	Cookies     []browserCookie `json:"cookies"`
	Error       string          `json:"error"`
}

type browserNav struct {
	URL      string `json:"url"`
	Status   int    `json:"status"`
	Location string `json:"location"`
}

func (r browserReport) String() string {
	text := r.Text
	if len(text) > 600 {
		text = text[:600] + "…"
	}
	var navs []string
	for _, n := range r.Navigations {
		navs = append(navs, fmt.Sprintf("%d %s", n.Status, n.URL))
	}
	return fmt.Sprintf("step %q: HTTP %d at %s (title %q)\nnavigations: %s\ntext: %q", r.Name, r.Status, r.URL, r.Title, strings.Join(navs, " → "), text)
}

// cookie returns the browser's cookie of that name, if any.
func (r browserReport) cookie(name string) (browserCookie, bool) {
	for _, c := range r.Cookies {
		if c.Name == name {
			return c, true
		}
	}
	return browserCookie{}, false
}

// postForm returns the first POST form on the page.
func (r browserReport) postForm() (browserForm, bool) {
	for _, f := range r.Forms {
		if f.Method == "post" {
			return f, true
		}
	}
	return browserForm{}, false
}

// jsonBody decodes the JSON a page shows (chromium renders a JSON answer
// as text, possibly below a pretty-print control).
func (r browserReport) jsonBody(t *testing.T, v any) {
	t.Helper()
	i, j := strings.Index(r.Text, "{"), strings.LastIndex(r.Text, "}")
	if i < 0 || j < i {
		t.Fatalf("the page shows no JSON:\n%s", r)
	}
	if err := json.Unmarshal([]byte(r.Text[i:j+1]), v); err != nil {
		t.Fatalf("the page's JSON does not decode: %v\n%s", err, r)
	}
}

// runBrowser plays steps in one chromium context that starts with cookies
// and returns a report per step. A step that failed in the browser (a
// timeout waiting for a URL, a missing button) fails the test with what the
// page showed.
func runBrowser(t *testing.T, cookies []browserCookie, steps ...browserStep) []browserReport {
	t.Helper()
	chromium, err := cognitolocal.Chromium()
	if err != nil {
		cognitolocal.Missing(t, "%v", err)
	}
	testenv, err := cognitolocal.TestenvDir()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(testenv, "node_modules", "playwright-core")); err != nil {
		cognitolocal.Missing(t, "playwright-core is not installed in testenv/node_modules")
	}
	if cookies == nil {
		cookies = []browserCookie{}
	}
	in, _ := json.Marshal(map[string]any{"cookies": cookies, "steps": steps, "timeout_ms": 20000})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join(testenv, "browser-login.js"))
	cmd.Dir = testenv
	cmd.Env = append(cmd.Environ(), "CHROMIUM="+chromium)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("browser-login.js: %v\n%s", err, stderr.String())
	}
	var res struct {
		Steps []browserReport `json:"steps"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("browser-login.js printed %q: %v", out, err)
	}
	for _, st := range steps {
		if st.Screenshot != "" {
			if _, err := os.Stat(st.Screenshot); err == nil {
				t.Logf("screenshot (%s): %s", st.Name, st.Screenshot)
			}
		}
	}
	for _, r := range res.Steps {
		if r.Error != "" {
			t.Fatalf("in the browser: %s\n%s", r.Error, r)
		}
	}
	if len(res.Steps) != len(steps) {
		t.Fatalf("browser-login.js reported %d steps of %d", len(res.Steps), len(steps))
	}
	return res.Steps
}

// signInSteps: open path on the site, expect cognito-local's sign-in form,
// sign in as user, and wait to be back at waitFor.
func (ls *loginSite) signInSteps(shots, path, user, waitFor string) []browserStep {
	return []browserStep{
		{Name: "sign-in form", Goto: ls.base + path, WaitURL: ls.s.cl.URL + "/oauth2/authorize", Screenshot: filepath.Join(shots, "01-sign-in-form.png")},
		{Name: "signed in", Fill: map[string]string{`input[name="username"]`: user, `input[name="password"]`: password},
			Click: `button[type="submit"]`, WaitURL: waitFor, Screenshot: filepath.Join(shots, "02-after-sign-in.png")},
	}
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

// ---- the browser test against cognito-local's hosted UI ----

func TestLoginBrowserCognitoLocal(t *testing.T) {
	ls := newCognitoLoginSite(t)
	s := ls.s

	// lena: linked by the operator beforehand, role editor, Cognito groups
	// "editors" and "on call" (not admins).
	lenaEmail := uniqueEmail(t, "lena", "example.com")
	lena := cognitoUser(t, s, lenaEmail, []string{"editors", "on call"}, map[string]string{"given_name": "Lena", "family_name": "Løvås"})
	ls.cliOK(t, "users", "add", "--username", "lena", "--email", lenaEmail, "--role", "editor")
	ls.cliOK(t, "users", "link", "lena", "--pool", "main", "--sub", lena.Sub)
	lenaID := ls.localUser(t, "lena").ID

	var sessionValue string
	var browserCookies []browserCookie
	t.Run("sign in, see the page, me, a page for admins", func(t *testing.T) {
		shots := artifactDir(t)
		steps := ls.signInSteps(shots, "/app/page?x=1&y=%C3%A9", lenaEmail, ls.base+"/app/page")
		steps = append(steps,
			browserStep{Name: "me", Goto: ls.base + "/auth/me", Screenshot: filepath.Join(shots, "03-me.png")},
			browserStep{Name: "admins only", Goto: ls.base + "/admin/tools", Screenshot: filepath.Join(shots, "04-forbidden.png")},
		)
		rep := runBrowser(t, nil, steps...)
		form, signedIn, me, admin := rep[0], rep[1], rep[2], rep[3]

		// 1. The protected page sent the browser to /auth/login, which sent
		// it to the hosted UI with state, nonce and PKCE.
		if len(form.Navigations) < 2 || form.Navigations[0].Status != http.StatusFound {
			t.Fatalf("opening the page: want 302 to sign in first:\n%s", form)
		}
		first, _ := url.Parse(form.Navigations[0].Location)
		if first.Path != "/auth/login" || first.Query().Get("next") != "/app/page?x=1&y=%C3%A9" {
			t.Errorf("first redirect to %q, want /auth/login?next=<the page>", form.Navigations[0].Location)
		}
		authz, _ := url.Parse(form.URL)
		q := authz.Query()
		if q.Get("client_id") != ls.client.ClientID || q.Get("redirect_uri") != ls.base+"/auth/callback" ||
			q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" ||
			len(q.Get("code_challenge")) != 43 || len(q.Get("state")) < 22 || len(q.Get("nonce")) < 22 ||
			!strings.Contains(" "+q.Get("scope")+" ", " openid ") {
			t.Errorf("authorize request %s lacks client_id/redirect_uri/S256 PKCE/state/nonce/openid", form.URL)
		}
		if !strings.Contains(form.Text, "Username") || form.Status != 200 {
			t.Errorf("want cognito-local's sign-in form:\n%s", form)
		}
		var loginCookie bool
		for _, c := range form.Cookies {
			if strings.HasPrefix(c.Name, "cognito_login") {
				loginCookie = true
				if !c.HTTPOnly {
					t.Errorf("sign-in state cookie %s is not HttpOnly", c.Name)
				}
			}
		}
		if !loginCookie {
			t.Errorf("no cognito_login* cookie while at the sign-in form: %+v", form.Cookies)
		}

		// 2. Back on the page asked for, as lena.
		if signedIn.URL != ls.base+"/app/page?x=1&y=%C3%A9" {
			t.Errorf("after sign-in the browser is at %s, want the page first asked for", signedIn.URL)
		}
		e := echoOf(t, signedIn)
		if e.Path != "/app/page" {
			t.Errorf("upstream saw path %q", e.Path)
		}
		wantIdentityHeaders(t, e, lenaID, lena.Username, lenaEmail, lena.Sub, []string{"editors", "on call"}, []string{"editor"})
		c, ok := signedIn.cookie(loginSessionName)
		if !ok {
			t.Fatalf("no %s cookie after sign-in: %+v", loginSessionName, signedIn.Cookies)
		}
		if !c.HTTPOnly || c.SameSite != "Lax" || c.Path != "/" {
			t.Errorf("session cookie %+v: want HttpOnly, SameSite=Lax, Path=/", c)
		}
		for _, c := range signedIn.Cookies {
			if strings.HasPrefix(c.Name, "cognito_login") && c.Value != "" {
				t.Errorf("the sign-in state cookie %s outlived the callback", c.Name)
			}
		}
		sessionValue = c.Value

		// 3. /auth/me.
		var m loginMe
		me.jsonBody(t, &m)
		if m.User.ID != lenaID || m.User.Username != "lena" || m.User.Email != lenaEmail || strings.Join(m.User.Roles, ",") != "editor" {
			t.Errorf("me.user = %+v", m.User)
		}
		if m.Identity.Issuer != ls.issuer || m.Identity.Sub != lena.Sub || m.Identity.Username != lena.Username ||
			m.Identity.Email != lenaEmail || !m.Identity.EmailVerified {
			t.Errorf("me.identity = %+v", m.Identity)
		}
		if got := strings.Join(m.Identity.Groups, ","); got != "editors,on call" && got != "on call,editors" {
			t.Errorf("me.identity.groups = %q", m.Identity.Groups)
		}
		checkSessionTimes(t, m, 2*time.Hour, 24*time.Hour)
		for _, secret := range []string{"access_token", "refresh_token", "id_token", sessionValue} {
			if strings.Contains(me.Text, secret) {
				t.Errorf("/auth/me shows %q", secret)
			}
		}

		// 4. Signed in, but not in group admins: a 403 page, never the upstream.
		if admin.Status != http.StatusForbidden || strings.Contains(admin.Text, `"headers"`) {
			t.Errorf("/admin/tools for a non-admin: want a 403 page:\n%s", admin)
		}
		browserCookies = admin.Cookies
	})
	if sessionValue == "" {
		t.FailNow()
	}

	// The refresh token Caddy holds for lena, read from cognito-local's
	// state. It works now; after sign-out it must be revoked.
	refresh := latestRefreshToken(t, ls, lena.Username)
	if status, body := ls.refreshGrant(t, refresh); status != 200 {
		t.Fatalf("before sign-out, the session's refresh token: HTTP %d %s", status, body)
	}

	t.Run("sign out", func(t *testing.T) {
		shots := artifactDir(t)
		rep := runBrowser(t, browserCookies,
			browserStep{Name: "logout confirmation", Goto: ls.base + "/auth/logout", Screenshot: filepath.Join(shots, "05-logout-confirm.png")},
			browserStep{Name: "signed out", Click: `form[method="post" i] button, form[method="post" i] input[type="submit"]`,
				WaitURL: ls.base + "/auth/logout/done", Screenshot: filepath.Join(shots, "06-signed-out.png")},
			browserStep{Name: "page again", Goto: ls.base + "/app/page", WaitURL: s.cl.URL + "/oauth2/authorize"},
		)
		confirm, done, again := rep[0], rep[1], rep[2]
		f, ok := confirm.postForm()
		if confirm.Status != 200 || !ok {
			t.Fatalf("logout confirmation: want a page with a POST form:\n%s", confirm)
		}
		if csrf, ok := f.field("csrf"); !ok || len(csrf) < 16 {
			t.Errorf("the logout form has no csrf field: %+v", f)
		}
		if a, _ := url.Parse(f.Action); a == nil || a.Path != "/auth/logout" {
			t.Errorf("the logout form posts to %q", f.Action)
		}
		// The POST went through Cognito's /logout with the sign-out URL.
		var viaCognito bool
		for _, n := range done.Navigations {
			if u, _ := url.Parse(n.URL); u != nil && strings.HasPrefix(n.URL, s.cl.URL+"/logout?") {
				viaCognito = u.Query().Get("client_id") == ls.client.ClientID && u.Query().Get("logout_uri") == ls.base+"/auth/logout/done"
			}
		}
		if !viaCognito {
			t.Errorf("sign-out did not pass through %s/logout?client_id=…&logout_uri=%s/auth/logout/done:\n%s", s.cl.URL, ls.base, done)
		}
		if done.Status != 200 || !strings.Contains(strings.ToLower(done.Text), "signed out") {
			t.Errorf("want the signed-out page:\n%s", done)
		}
		if c, ok := done.cookie(loginSessionName); ok && c.Value != "" {
			t.Errorf("the browser still holds a session cookie after sign-out: %+v", c)
		}
		if !strings.Contains(again.Text, "Username") {
			t.Errorf("after sign-out the page should ask to sign in again:\n%s", again)
		}
	})

	t.Run("the old session cookie is dead", func(t *testing.T) {
		c := newWebClient(t)
		c.setCookie(ls.base, loginSessionName, sessionValue)
		wantSignInRedirect(t, ls.base, c.navigate(ls.base+"/app/page"), "/app/page")
		wantUnauthenticatedJSON(t, c.api(http.MethodGet, ls.base+"/app/data", nil), "/app/data")
		r := c.api(http.MethodGet, ls.base+"/auth/me", nil)
		if r.Status != http.StatusUnauthorized {
			t.Errorf("/auth/me with the old cookie: %s", r)
		}
		if status, body := ls.refreshGrant(t, refresh); status != 400 || !strings.Contains(string(body), "invalid_grant") {
			t.Errorf("after sign-out the session's refresh token still works at cognito-local: HTTP %d %s", status, body)
		}
	})

	t.Run("unknown user sees the refused page", func(t *testing.T) {
		shots := artifactDir(t)
		email := uniqueEmail(t, "stranger", "example.com")
		cognitoUser(t, s, email, nil, nil)
		steps := ls.signInSteps(shots, "/app/page", email, ls.base+"/auth/callback")
		steps[1].Screenshot = filepath.Join(shots, "07-refused.png")
		rep := runBrowser(t, nil, steps...)
		refused := rep[1]
		if refused.Status != http.StatusForbidden || !strings.Contains(refused.Text, loginRefused) {
			t.Errorf("want the 403 page with the refused_message %q:\n%s", loginRefused, refused)
		}
		if c, ok := refused.cookie(loginSessionName); ok && c.Value != "" {
			t.Errorf("a refused user got a session cookie")
		}
		if r := ls.cli(t, "users", "show", email); r.code != 3 {
			t.Errorf("a refused identity became a local user:\n%s", r)
		}
	})

	// Federated users: cognito-local cannot put `identities` into an ID
	// token (its token generator copies only custom:* attributes, and
	// `identities` is a reserved claim even for a pre-token-generation
	// trigger), so `admit trusted_provider` cannot be driven through its
	// hosted UI. A user migrated from an SSO provider carries
	// custom:from_sso = "1", which cognito-local does put into the ID token:
	// `admit sso_migration` links it to the existing local user of the same
	// username.
	t.Run("sso migration links to the existing local user", func(t *testing.T) {
		shots := artifactDir(t)
		email := uniqueEmail(t, "dave.sso", "example.com")
		dave := cognitoUser(t, s, email, []string{"admins"}, map[string]string{"custom:from_sso": "1"})
		// The local user from the SSO era: same username, no identity yet.
		ls.cliOK(t, "users", "add", "--username", dave.Username, "--role", "ops")
		before := ls.localUser(t, dave.Username)
		if len(before.Identities) != 0 {
			t.Fatalf("dave has identities before his first sign-in: %+v", before)
		}
		steps := ls.signInSteps(shots, "/admin/panel", email, ls.base+"/admin/panel")
		steps[1].Screenshot = filepath.Join(shots, "08-sso-admin-page.png")
		rep := runBrowser(t, nil, steps...)
		wantIdentityHeaders(t, echoOf(t, rep[1]), before.ID, dave.Username, email, dave.Sub, []string{"admins"}, []string{"ops"})
		after := ls.localUser(t, dave.Username)
		if after.ID != before.ID || len(after.Identities) != 1 || after.Identities[0].Sub != dave.Sub || after.Identities[0].Issuer != ls.issuer {
			t.Errorf("after the first sign-in dave is %+v, want the same user linked to %s %s", after, ls.issuer, dave.Sub)
		}
	})

	t.Run("verified e-mail of the partner domain creates a local user", func(t *testing.T) {
		shots := artifactDir(t)
		email := uniqueEmail(t, "pia", loginPartnerDom)
		pia := cognitoUser(t, s, email, nil, nil)
		if r := ls.cli(t, "users", "show", email); r.code != 3 {
			t.Fatalf("pia exists before her first sign-in:\n%s", r)
		}
		steps := ls.signInSteps(shots, "/welcome", email, ls.base+"/welcome")
		steps = append(steps, browserStep{Name: "me", Goto: ls.base + "/auth/me", Screenshot: filepath.Join(shots, "09-partner-me.png")})
		rep := runBrowser(t, nil, steps...)
		u := ls.localUser(t, email)
		if !u.Active || !strings.EqualFold(u.Email, email) || len(u.Identities) != 1 || u.Identities[0].Sub != pia.Sub {
			t.Errorf("the admitted local user is %+v, want an active user with pia's email linked to her sub", u)
		}
		wantIdentityHeaders(t, echoOf(t, rep[1]), u.ID, pia.Username, email, pia.Sub, nil, nil)
		var m loginMe
		rep[2].jsonBody(t, &m)
		if m.User.ID != u.ID || m.Identity.Sub != pia.Sub {
			t.Errorf("/auth/me = %+v, want local user %s", m, u.ID)
		}
	})
}

// latestRefreshToken reads the newest refresh token cognito-local keeps for
// a user (its state file; written asynchronously, so poll).
func latestRefreshToken(t *testing.T, ls *loginSite, username string) string {
	t.Helper()
	file := ls.s.cl.StateFile(ls.s.pool.ID)
	deadline := time.Now().Add(10 * time.Second)
	for {
		data, err := os.ReadFile(file)
		if err == nil {
			var st struct {
				Users map[string]struct {
					Username      string
					RefreshTokens []string
				}
			}
			if json.Unmarshal(data, &st) == nil {
				for _, u := range st.Users {
					if u.Username == username && len(u.RefreshTokens) > 0 {
						return u.RefreshTokens[len(u.RefreshTokens)-1]
					}
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no refresh token for %s in %s (err %v)", username, file, err)
		}
		time.Sleep(100 * time.Millisecond) // poll interval
	}
}

// refreshGrant uses a refresh token at cognito-local's token endpoint as
// the site's app client.
func (ls *loginSite) refreshGrant(t *testing.T, refresh string) (int, []byte) {
	t.Helper()
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "client_id": {ls.client.ClientID}}
	req, _ := http.NewRequest(http.MethodPost, ls.s.cl.URL+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(ls.client.ClientID), url.QueryEscape(ls.client.ClientSecret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	return resp.StatusCode, buf.Bytes()
}
