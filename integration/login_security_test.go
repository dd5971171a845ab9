package integration

import (
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/caddy-cognito/caddy-cognito/integration/internal/cognitolocal"
)

// cognito_login under attack, with plain net/http (no browser): the
// sign-in endpoints, the session cookie and the identity headers, against
// the xcaddy-built binary and cognito-local's hosted UI.

func TestLoginSecurity(t *testing.T) {
	ls := newCognitoLoginSite(t)
	s := ls.s
	samEmail := uniqueEmail(t, "sam", "example.com")
	sam := cognitoUser(t, s, samEmail, []string{"staff"}, nil)
	ls.cliOK(t, "users", "add", "--username", "sam", "--email", samEmail, "--role", "viewer")
	ls.cliOK(t, "users", "link", "sam", "--pool", "main", "--sub", sam.Sub)
	samID := ls.localUser(t, "sam").ID

	t.Run("without a session: navigation redirects, API calls get 401 JSON", func(t *testing.T) {
		c := newWebClient(t)
		wantSignInRedirect(t, ls.base, c.navigate(ls.base+"/docs/a?b=c&d=%2F"), "/docs/a?b=c&d=%2F")
		wantUnauthenticatedJSON(t, c.api(http.MethodGet, ls.base+"/docs/a?b=c", nil), "/docs/a?b=c")
		// A form POST is not a navigation to redirect: 401.
		r := c.postForm(ls.base+"/docs/a", url.Values{"x": {"1"}})
		if r.Status != http.StatusUnauthorized || r.Upstream != nil {
			t.Errorf("POST without a session: %s", r)
		}
		// fetch() with Accept */* but Sec-Fetch-Mode: cors is not a navigation.
		req, _ := http.NewRequest(http.MethodGet, ls.base+"/docs/b", nil)
		req.Header.Set("Accept", "*/*")
		req.Header.Set("Sec-Fetch-Mode", "cors")
		wantUnauthenticatedJSON(t, c.do(req), "/docs/b")
		r = c.api(http.MethodGet, ls.base+"/auth/me", nil)
		if r.Status != http.StatusUnauthorized || !strings.Contains(r.Header.Get("Content-Type"), "json") {
			t.Errorf("/auth/me without a session: want 401 JSON, got %s", r)
		}
	})

	t.Run("sign-in request: PKCE, nonce, state, idp", func(t *testing.T) {
		c := newWebClient(t)
		a := ls.startSignIn(t, c, "/x")
		q := a.Query()
		if !strings.HasPrefix(a.String(), s.cl.URL+"/oauth2/authorize?") || q.Get("code_challenge_method") != "S256" ||
			q.Get("state") == "" || q.Get("nonce") == "" || q.Get("redirect_uri") != ls.base+"/auth/callback" {
			t.Errorf("authorize URL %s", a)
		}
		b := ls.startSignIn(t, newWebClient(t), "/x")
		if b.Query().Get("state") == q.Get("state") || b.Query().Get("nonce") == q.Get("nonce") ||
			b.Query().Get("code_challenge") == q.Get("code_challenge") {
			t.Errorf("two sign-ins share state, nonce or PKCE challenge:\n%s\n%s", a, b)
		}
		if a.Query().Get("identity_provider") != "" {
			t.Errorf("identity_provider without idp: %s", a)
		}
		r := newWebClient(t).navigate(ls.base + "/auth/login?next=/x&idp=Google")
		if r.Status != http.StatusFound || location(t, r).Query().Get("identity_provider") != "Google" {
			t.Errorf("login?idp=Google: want identity_provider=Google at the hosted UI, got %s (Location %s)", r, r.Header.Get("Location"))
		}
	})

	t.Run("cookie flags", func(t *testing.T) {
		c := newWebClient(t)
		login := c.navigate(ls.base + "/auth/login?next=/flags")
		var state *http.Cookie
		for _, ck := range (&http.Response{Header: login.Header}).Cookies() {
			if strings.HasPrefix(ck.Name, "cognito_login") {
				state = ck
			}
		}
		if state == nil {
			t.Fatalf("/auth/login set no cognito_login* cookie: %v", login.Header.Values("Set-Cookie"))
		}
		if !state.HttpOnly || state.SameSite == http.SameSiteNoneMode || state.Domain != "" {
			t.Errorf("sign-in state cookie %q: want HttpOnly, SameSite Lax or Strict, no Domain", state.Raw)
		}
		if state.MaxAge <= 0 || state.MaxAge > 3600 {
			t.Errorf("sign-in state cookie %q: want a short Max-Age (≤ 1h)", state.Raw)
		}
		p := plainSignIn{authorize: location(t, login)}
		p.callback = ls.hostedUI(t, p.authorize, samEmail)
		p.answer = c.navigate(p.callback.String())
		p.wantSignedIn(t, "/flags")
		sc := setCookie(p.answer, loginSessionName)
		if !sc.HttpOnly || sc.SameSite != http.SameSiteLaxMode || sc.Path != "/" || sc.Domain != "" {
			t.Errorf("session cookie %q: want HttpOnly; SameSite=Lax; Path=/; no Domain", sc.Raw)
		}
		if len(sc.Value) < 32 {
			t.Errorf("session cookie value %q is short for a random id", sc.Value)
		}
		for _, v := range p.answer.Header.Values("Set-Cookie") {
			if strings.Contains(v, "eyJ") { // a JWT's first bytes
				t.Errorf("a cookie carries a token: %q", v)
			}
		}
	})

	t.Run("spoofed identity headers never reach the upstream", func(t *testing.T) {
		c := newWebClient(t)
		ls.signInPlain(t, c, "/", samEmail).wantSignedIn(t, "/")
		r := c.navigate(ls.base+"/spoof",
			"X-Auth-User", "u_evil", "x-auth-roles", "admin", "X_Auth_Email", "evil@example.com",
			"X-AUTH-SUB", "evil", "X-Auth-Groups", "admins", "X-Auth-Username", "root", "X-Auth-Extra", "1",
			"Connection", "X-Auth-User, X-Auth-Roles")
		if r.Upstream == nil {
			t.Fatalf("want the upstream: %s", r)
		}
		h := r.Upstream.authHeaders()
		if _, ok := h["x-auth-extra"]; ok {
			t.Errorf("a client-sent X-Auth-Extra reached the upstream: %v", h)
		}
		wantIdentityHeaders(t, r.Upstream, samID, sam.Username, samEmail, sam.Sub, []string{"staff"}, []string{"viewer"})
		// And without a session the spoofed headers get nowhere.
		r = newWebClient(t).navigate(ls.base+"/spoof", "X-Auth-User", samID, "X-Auth-Sub", sam.Sub)
		if r.Upstream != nil {
			t.Errorf("spoofed headers without a session reached the upstream: %s", r)
		}
	})

	t.Run("callback without or with a wrong state restarts sign-in", func(t *testing.T) {
		// No state cookie at all.
		wantRestart(t, newWebClient(t).navigate(ls.base+"/auth/callback?code=abc&state=def"))

		// A state that is not the one of this browser's sign-in.
		c := newWebClient(t)
		a := ls.startSignIn(t, c, "/deep/page")
		cb := ls.hostedUI(t, a, samEmail)
		q := cb.Query()
		q.Set("state", a.Query().Get("state")+"x")
		loc := wantRestart(t, c.navigate(ls.base+"/auth/callback?"+q.Encode()))
		t.Logf("wrong state: restarted at %s", loc)
		q.Del("state")
		wantRestart(t, c.navigate(ls.base+"/auth/callback?"+q.Encode()))

		// Login CSRF: a callback URL from the attacker's own sign-in, opened
		// in the victim's browser during the victim's sign-in.
		attacker := newWebClient(t)
		evil := ls.hostedUI(t, ls.startSignIn(t, attacker, "/"), samEmail)
		victim := newWebClient(t)
		ls.startSignIn(t, victim, "/inbox")
		wantRestart(t, victim.navigate(evil.String()))
		if v := victim.cookie(ls.base, loginSessionName); v != "" {
			t.Errorf("the victim's browser holds a session after the attacker's callback URL")
		}
	})

	t.Run("an authorization code works once", func(t *testing.T) {
		c := newWebClient(t)
		p := ls.signInPlain(t, c, "/once", samEmail)
		p.wantSignedIn(t, "/once")
		// The same callback URL, with the same sign-in cookies, in a fresh browser.
		replay := newWebClient(t)
		for _, ck := range p.before {
			replay.setCookie(ls.base, ck.Name, ck.Value)
		}
		r := replay.navigate(p.callback.String())
		if r.Status == http.StatusSeeOther || (setCookie(r, loginSessionName) != nil && setCookie(r, loginSessionName).Value != "") {
			t.Fatalf("a replayed code signed in again: %s %v", r, r.Header.Values("Set-Cookie"))
		}
		// invalid_grant at the token endpoint: sign-in starts over.
		wantRestart(t, r)
		if replay.cookie(ls.base, loginSessionName) != "" {
			t.Errorf("the replaying browser holds a session cookie")
		}
		// The same URL again in the browser that signed in: no second session either.
		r = c.navigate(p.callback.String())
		if sc := setCookie(r, loginSessionName); r.Status == http.StatusSeeOther || (sc != nil && sc.Value != "" && sc.MaxAge >= 0) {
			t.Errorf("the callback URL, opened again, answered %s %v", r, r.Header.Values("Set-Cookie"))
		}
	})

	t.Run("session fixation: a planted session id is replaced at sign-in", func(t *testing.T) {
		planted := "fixation-" + randomHex(t, 20)
		c := newWebClient(t)
		c.setCookie(ls.base, loginSessionName, planted)
		wantSignInRedirect(t, ls.base, c.navigate(ls.base+"/fix"), "/fix")
		got := ls.signInPlain(t, c, "/fix", samEmail).wantSignedIn(t, "/fix")
		if got == planted {
			t.Fatalf("the session id after sign-in is the planted one")
		}
		attacker := newWebClient(t)
		attacker.setCookie(ls.base, loginSessionName, planted)
		if r := attacker.navigate(ls.base + "/fix"); r.Upstream != nil {
			t.Errorf("the planted id is signed in: %s", r)
		}
		// A live session id of someone else, planted: signing in still
		// issues a new one, and the old one is not turned into this user.
		other := newWebClient(t)
		otherID := ls.signInPlain(t, other, "/", samEmail).wantSignedIn(t, "/")
		v := newWebClient(t)
		v.setCookie(ls.base, loginSessionName, otherID)
		if got := ls.signInPlain(t, v, "/", samEmail).wantSignedIn(t, "/"); got == otherID {
			t.Errorf("signing in kept the session id that was planted")
		}
	})

	t.Run("X-Forwarded-Host cannot change the redirect_uri", func(t *testing.T) {
		for _, hdr := range [][]string{
			{"X-Forwarded-Host", "evil.example"},
			{"X-Forwarded-Host", "evil.example", "X-Forwarded-Proto", "https"},
			{"Forwarded", "host=evil.example;proto=https"},
			{"X-Original-Host", "evil.example", "X-Forwarded-Server", "evil.example"},
		} {
			a := ls.startSignIn(t, newWebClient(t), "/", hdr...)
			if got := a.Query().Get("redirect_uri"); got != ls.base+"/auth/callback" {
				t.Errorf("with %v the redirect_uri is %q, want %s/auth/callback", hdr, got, ls.base)
			}
		}
	})

	t.Run("next pointing off the site falls back to /", func(t *testing.T) {
		for _, next := range []string{
			"//evil.example", "https://evil.example", "//evil.example/path", `/\evil.example`, `\\evil.example`,
			"http:evil.example", "javascript:alert(1)", "/%2F%2Fevil.example", "https:/evil.example", " //evil.example",
		} {
			c := newWebClient(t)
			p := ls.signInPlain(t, c, next, samEmail)
			if p.answer.Status != http.StatusSeeOther {
				t.Errorf("next=%q: callback answered %s", next, p.answer)
				continue
			}
			loc := p.answer.Header.Get("Location")
			u, err := url.Parse(loc)
			// Acceptable: "/" (the fallback), or a same-site path that a
			// browser cannot read as another host.
			if err != nil || loc != "/" && (u.Host != "" || u.Scheme != "" || !strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, "//") || strings.HasPrefix(loc, `/\`)) {
				t.Errorf("next=%q: after sign-in the browser is sent to %q", next, loc)
			} else if loc != "/" {
				t.Logf("next=%q: kept as the same-site path %q", next, loc)
			}
		}
		// Same-site paths survive, query included.
		ls.signInPlain(t, newWebClient(t), "/reports/2024?tab=a%20b", samEmail).wantSignedIn(t, "/reports/2024?tab=a%20b")
	})

	t.Run("provider error access_denied shows an error page", func(t *testing.T) {
		c := newWebClient(t)
		a := ls.startSignIn(t, c, "/denied")
		q := url.Values{"error": {"access_denied"}, "error_description": {`<script>alert("x")</script>`}, "state": {a.Query().Get("state")}}
		r := c.navigate(ls.base + "/auth/callback?" + q.Encode())
		if r.Status < 400 || r.Status > 499 || !strings.Contains(r.Header.Get("Content-Type"), "text/html") || r.Upstream != nil {
			t.Fatalf("want a 4xx HTML page, got %s (Content-Type %q)", r, r.Header.Get("Content-Type"))
		}
		if strings.Contains(string(r.Body), `<script>alert("x")`) {
			t.Errorf("the error page reflects the provider's error_description as HTML")
		}
		if sc := setCookie(r, loginSessionName); sc != nil && sc.Value != "" && sc.MaxAge >= 0 {
			t.Errorf("access_denied set a session cookie")
		}
	})

	t.Run("unverified e-mail of the admitted domain is refused", func(t *testing.T) {
		email := uniqueEmail(t, "unverified", loginPartnerDom)
		cognitoUser(t, s, email, nil, map[string]string{"email_verified": ""})
		if claims := idTokenClaims(t, s, email); claims["email_verified"] != false || claims["email"] != email {
			t.Fatalf("cognito-local's ID token for %s says email %v, email_verified %v; want the address, unverified", email, claims["email"], claims["email_verified"])
		}
		c := newWebClient(t)
		p := ls.signInPlain(t, c, "/", email)
		if p.answer.Status != http.StatusForbidden || !strings.Contains(html.UnescapeString(string(p.answer.Body)), loginRefused) {
			t.Errorf("want the 403 refused page, got %s", p.answer)
		}
		if r := ls.cli(t, "users", "show", email); r.code != 3 {
			t.Errorf("an unverified address became a local user:\n%s", r)
		}
	})

	t.Run("sign-out needs the form's csrf token", func(t *testing.T) {
		c := newWebClient(t)
		sid := ls.signInPlain(t, c, "/", samEmail).wantSignedIn(t, "/")
		stillIn := func(when string) {
			t.Helper()
			if r := c.navigate(ls.base + "/still"); r.Upstream == nil {
				t.Fatalf("%s: the session ended: %s", when, r)
			}
		}
		for _, form := range []url.Values{{}, {"csrf": {"x"}}, {"csrf": {""}, "next": {"/"}}} {
			r := c.postForm(ls.base+"/auth/logout", form, "Origin", "http://evil.example", "Sec-Fetch-Site", "cross-site")
			if r.Status < 400 || r.Status > 499 {
				t.Errorf("cross-site POST /auth/logout with %v: want 4xx, got %s", form, r)
			}
			stillIn("after a forged sign-out")
		}
		page := c.navigate(ls.base + "/auth/logout?next=/bye")
		if page.Status != 200 {
			t.Fatalf("GET /auth/logout: %s", page)
		}
		stillIn("after GET /auth/logout")
		form := url.Values{}
		for _, tag := range inputTag.FindAllString(string(page.Body), -1) {
			attrs := map[string]string{}
			for _, m := range attribute.FindAllStringSubmatch(tag, -1) {
				attrs[strings.ToLower(m[1])] = html.UnescapeString(m[2])
			}
			if attrs["name"] != "" {
				form.Set(attrs["name"], attrs["value"])
			}
		}
		if form.Get("csrf") == "" {
			t.Fatalf("the logout page has no csrf field: %s", page.Body)
		}
		r := c.postForm(ls.base+"/auth/logout", form, "Origin", ls.base)
		if r.Status != http.StatusSeeOther {
			t.Fatalf("POST /auth/logout with the csrf token: want 303, got %s", r)
		}
		out := location(t, r)
		if !strings.HasPrefix(out.String(), s.cl.URL+"/logout?") || out.Query().Get("client_id") != ls.client.ClientID ||
			out.Query().Get("logout_uri") != ls.base+"/auth/logout/done" {
			t.Errorf("sign-out sent the browser to %s, want %s/logout?client_id=%s&logout_uri=%s/auth/logout/done", out, s.cl.URL, ls.client.ClientID, ls.base)
		}
		back := c.navigate(out.String())
		if back.Status != http.StatusFound || back.Header.Get("Location") != ls.base+"/auth/logout/done" {
			t.Fatalf("cognito-local's /logout answered %s", back)
		}
		done := c.navigate(ls.base + "/auth/logout/done")
		if done.Status == http.StatusSeeOther {
			if got := done.Header.Get("Location"); got != "/bye" {
				t.Errorf("logout/done sent the browser to %q, want the validated next /bye", got)
			}
		} else if done.Status != 200 || !strings.Contains(strings.ToLower(string(done.Body)), "signed out") {
			t.Errorf("logout/done: %s", done)
		}
		replay := newWebClient(t)
		replay.setCookie(ls.base, loginSessionName, sid)
		wantSignInRedirect(t, ls.base, replay.navigate(ls.base+"/after"), "/after")
		// logout/done never sends the browser off the site.
		for _, next := range []string{"//evil.example", "https://evil.example"} {
			r := newWebClient(t).navigate(ls.base + "/auth/logout/done?next=" + url.QueryEscape(next))
			if loc := r.Header.Get("Location"); strings.Contains(loc, "evil.example") {
				t.Errorf("logout/done?next=%s redirects to %q", next, loc)
			}
		}
	})
}

// idTokenClaims signs a user in with USER_PASSWORD_AUTH at cognito-local and
// returns the claims of the ID token it issues.
func idTokenClaims(t *testing.T, s *stack, user string) map[string]any {
	t.Helper()
	c, err := cognitolocal.Payload(s.login(t, s.web.ClientID, user).IDToken)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestLoginHTTPSCookies: on an https site (Caddy's `tls internal`) the
// cookies carry the __Host- prefix and Secure, so that no other origin of
// the host (another port, a plain-http sibling) can set or shadow them.
func TestLoginHTTPSCookies(t *testing.T) {
	ls := newCognitoLoginSiteScheme(t, "https")
	s := ls.s
	email := uniqueEmail(t, "tess", "example.com")
	tess := cognitoUser(t, s, email, nil, nil)
	ls.cliOK(t, "users", "add", "--username", "tess", "--email", email)
	ls.cliOK(t, "users", "link", "tess", "--pool", "main", "--sub", tess.Sub)
	tessID := ls.localUser(t, "tess").ID

	c := newWebClient(t)
	login := c.navigate(ls.base + "/auth/login?next=/secure")
	if login.Status != http.StatusFound {
		t.Fatalf("/auth/login: %s", login)
	}
	a := location(t, login)
	if got := a.Query().Get("redirect_uri"); got != ls.base+"/auth/callback" {
		t.Errorf("redirect_uri %q, want %s/auth/callback", got, ls.base)
	}
	var state *http.Cookie
	for _, ck := range (&http.Response{Header: login.Header}).Cookies() {
		if strings.HasPrefix(ck.Name, "__Host-cognito_login") {
			state = ck
		} else if strings.HasPrefix(ck.Name, "cognito_login") {
			t.Errorf("on https the sign-in state cookie %q lacks the __Host- prefix", ck.Name)
		}
	}
	if state == nil || !state.Secure || !state.HttpOnly || state.Path != "/" || state.Domain != "" {
		t.Errorf("sign-in state cookie %v: want __Host-…; Secure; HttpOnly; Path=/; no Domain (all Set-Cookie: %q)", state, login.Header.Values("Set-Cookie"))
	}
	p := plainSignIn{authorize: a}
	p.callback = ls.hostedUI(t, a, email)
	p.answer = c.navigate(p.callback.String())
	if p.answer.Status != http.StatusSeeOther || p.answer.Header.Get("Location") != "/secure" {
		t.Fatalf("callback: want 303 to /secure, got %s", p.answer)
	}
	if plain := setCookie(p.answer, loginSessionName); plain != nil {
		t.Errorf("on https the session cookie is named %q, want the __Host- prefix", plain.Name)
	}
	sc := setCookie(p.answer, "__Host-"+loginSessionName)
	if sc == nil || sc.Value == "" {
		t.Fatalf("no __Host-%s cookie: %q", loginSessionName, p.answer.Header.Values("Set-Cookie"))
	}
	if !sc.Secure || !sc.HttpOnly || sc.SameSite != http.SameSiteLaxMode || sc.Path != "/" || sc.Domain != "" {
		t.Errorf("session cookie %q: want Secure; HttpOnly; SameSite=Lax; Path=/; no Domain", sc.Raw)
	}
	r := c.navigate(ls.base + "/secure")
	if r.Upstream == nil {
		t.Fatalf("with the __Host- session cookie: %s", r)
	}
	if got := one(t, r.Upstream.authHeaders(), "x-auth-user"); got != tessID {
		t.Errorf("X-Auth-User = %q, want %q", got, tessID)
	}
	// The same id under the unprefixed name (which any http origin of the
	// host could set) is not a session on the https site.
	other := newWebClient(t)
	other.setCookie(ls.base, loginSessionName, sc.Value)
	if r := other.navigate(ls.base + "/secure"); r.Upstream != nil {
		t.Errorf("the session id under the unprefixed cookie name signed in: %s", r)
	}
}
