package integration

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

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
		data, err := os.ReadFile(file) //nolint:gosec // G304: a file the test itself wrote
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
	defer func() { _ = resp.Body.Close() }() // read-only
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}
