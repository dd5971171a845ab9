package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddy-cognito/caddy-cognito/integration/internal/cognitolocal"
)

// The security fixes of ccbf5d0, 33b2e57 and bddb8a5, each held to what a
// user or an attacker sees from the xcaddy-built binary in front of the
// echo upstream, with cognito-local's API and hosted UI:
//
//	TestHardeningSessionBoundToPool     a customers-pool session is no session on the staff part of the site
//	TestHardeningVerifiedEmailOnly      X-Auth-Email / {http.auth.user.email} only for a verified address
//	TestHardeningForceLogoutConfirms    GET /auth/login?force_logout=true asks, a POST signs out
//	TestHardeningTrailersStripped       X-Auth-* names sent as request trailers never reach the upstream
//	TestHardeningSSOMigrationUnlinked   admit sso_migration never links a second identity to a linked user
//
// Each fails on the code before its fix (5accc97).

// ---- 1. a session is bound to the pool and app client it signed in with ----

// hardeningPoolsCaddyfile: /staff/* signs in with pool staff (its own
// cognito-local pool; linked users only) under /staff/auth/, everything
// else with pool customers (the shared pool; anyone). One store, one
// secret, one cookie name: a browser sends the customers' cookie to /staff.
const hardeningPoolsCaddyfile = `{
	admin {$CADDY_ADMIN}
	auto_https off
	cognito {
		store sqlite @DB@
		pool customers {
			issuer @C_ISSUER@
			client_id @C_CLIENT_ID@
			client_secret @C_CLIENT_SECRET@
			domain @DOMAIN@
		}
		pool staff {
			issuer @S_ISSUER@
			client_id @S_CLIENT_ID@
			client_secret @S_CLIENT_SECRET@
			domain @DOMAIN@
		}
	}
}

http://127.0.0.1:@PORT@ {
	handle /staff/* {
		cognito_login {
			pool staff
			path_prefix /staff/auth/
			secret @SECRET@
		}
		reverse_proxy @UPSTREAM@
	}
	handle {
		cognito_login {
			pool customers
			secret @SECRET@
			admit any
		}
		reverse_proxy @UPSTREAM@
	}
}
`

// TestHardeningSessionBoundToPool: a customer's cognito_session cookie,
// sent to the staff part of the same site (the same browser, or the value
// copied into another), is no session there: a navigation is sent to the
// staff sign-in, an API call gets 401 JSON, /staff/auth/me says 401, and
// the upstream never sees any of these requests. The customer stays signed
// in on the customer part. A staff session works on /staff (the part is
// reachable) and, the other way round, is no session for the customers.
func TestHardeningSessionBoundToPool(t *testing.T) {
	s := getStack(t)
	cognitolocal.RequirePatched(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	staffPool, err := s.cl.CreateUserPool(ctx, "staff-"+randomHex(t, 3))
	if err != nil {
		t.Fatal(err)
	}
	port, err := cognitolocal.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	customers := newAppClient(t, s, "customers-", base)
	staff := poolAppClient(t, s, staffPool.ID, "staff-", base+"/staff/auth/")
	staffIssuer := s.cl.Issuer(staffPool.ID)
	ls := newLoginSite(t, s, port, hardeningPoolsCaddyfile, map[string]string{
		"@C_ISSUER@": s.issuer, "@C_CLIENT_ID@": customers.ClientID, "@C_CLIENT_SECRET@": customers.ClientSecret,
		"@S_ISSUER@": staffIssuer, "@S_CLIENT_ID@": staff.ClientID, "@S_CLIENT_SECRET@": staff.ClientSecret,
		"@DOMAIN@": s.cl.URL,
	})
	ls.client, ls.issuer = customers, s.issuer

	coraEmail := uniqueEmail(t, "cora", "example.com")
	cora := cognitoUser(t, s, coraEmail, nil, nil)
	stanEmail := uniqueEmail(t, "stan", "example.com")
	stan := cognitoUserIn(t, s, staffPool.ID, stanEmail, nil, nil)
	ls.cliOK(t, "users", "add", "--username", "stan", "--email", stanEmail, "--role", "staff")
	ls.cliOK(t, "users", "link", "stan", "--pool", "staff", "--sub", stan.Sub)
	stanID := ls.localUser(t, "stan").ID

	// The customer signs in on the customer part.
	c := newWebClient(t)
	sid := ls.signInPlain(t, c, "/shop", coraEmail).wantSignedIn(t, "/shop")
	r := c.navigate(base + "/shop")
	if r.Upstream == nil {
		t.Fatalf("the customer's session on /shop: %s", r)
	}
	if got := one(t, r.Upstream.authHeaders(), "x-auth-sub"); got != cora.Sub {
		t.Fatalf("X-Auth-Sub on /shop = %q, want the customer's sub %q", got, cora.Sub)
	}
	coraID := one(t, r.Upstream.authHeaders(), "x-auth-user")

	// The same browser, then another one holding the copied cookie, on /staff.
	secret := "/staff/reports-" + randomHex(t, 4)
	copied := newWebClient(t)
	copied.setCookie(base, loginSessionName, sid)
	for name, w := range map[string]*webClient{"the customer's browser": c, "a browser with the copied cookie": copied} {
		wantSignInAt(t, base, w.navigate(base+secret+"?q=1"), "/staff/auth/login", secret+"?q=1", name)
		wantUnauthenticatedAt(t, w.api(http.MethodGet, base+secret+"/data", nil), "/staff/auth/login", secret+"/data", name)
		if r := w.api(http.MethodGet, base+"/staff/auth/me", nil); r.Status != http.StatusUnauthorized || r.Upstream != nil {
			t.Errorf("%s: /staff/auth/me with the customer's cookie: want 401, got %s", name, r)
		}
	}
	if n, m := s.hitCount(secret), s.hitCount(secret+"/data"); n != 0 || m != 0 {
		t.Errorf("the upstream received %d requests for %s and %d for %s/data, with a customer's session", n, secret, m, secret)
	}

	// The customer is still signed in on the customer part, in the same
	// browser and (the session is not ended) with the copied cookie.
	for name, w := range map[string]*webClient{"the customer's browser": c, "a browser with the copied cookie": copied} {
		r := w.navigate(base + "/shop/again")
		if r.Upstream == nil {
			t.Errorf("%s: after visiting /staff the customer's session no longer works on /shop: %s", name, r)
		} else if got := one(t, r.Upstream.authHeaders(), "x-auth-user"); got != coraID {
			t.Errorf("%s: X-Auth-User on /shop = %q, want %q", name, got, coraID)
		}
	}

	// The staff part works for staff, and a staff session is nothing to
	// the customers.
	d := newWebClient(t)
	p := signInAt(t, ls, d, "/staff/auth/", "/staff/desk", stanEmail)
	if p.answer.Status != http.StatusSeeOther || p.answer.Header.Get("Location") != "/staff/desk" {
		t.Fatalf("staff sign-in: want 303 to /staff/desk, got %s", p.answer)
	}
	staffSID := setCookie(p.answer, loginSessionName)
	if staffSID == nil || staffSID.Value == "" {
		t.Fatalf("staff sign-in set no %s cookie", loginSessionName)
	}
	r = d.navigate(base + "/staff/desk")
	if r.Upstream == nil {
		t.Fatalf("the staff session on /staff/desk: %s", r)
	}
	if got := one(t, r.Upstream.authHeaders(), "x-auth-user"); got != stanID {
		t.Errorf("X-Auth-User on /staff/desk = %q, want stan's local id %q", got, stanID)
	}
	other := newWebClient(t)
	other.setCookie(base, loginSessionName, staffSID.Value)
	wantSignInAt(t, base, other.navigate(base+"/shop/x"), "/auth/login", "/shop/x", "a staff session on /shop")
	if n := s.hitCount("/shop/x"); n != 0 {
		t.Errorf("the upstream received %d requests for /shop/x with a staff session", n)
	}
}

// poolAppClient creates a confidential app client of pool poolID for
// browser sign-in with its endpoints under prefix (a URL ending in /).
func poolAppClient(t *testing.T, s *stack, poolID, name, prefix string) cognitolocal.AppClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := s.cl.CreateUserPoolClient(ctx, poolID, name+randomHex(t, 4), cognitolocal.ClientOptions{
		GenerateSecret:    true,
		CallbackURLs:      []string{prefix + "callback"},
		LogoutURLs:        []string{prefix + "logout/done"},
		AllowedOAuthFlows: []string{"code"},
		OAuthScopes:       []string{"openid", "email", "profile"},
	})
	if err != nil || client.ClientSecret == "" {
		t.Fatalf("creating an app client of pool %s: %+v %v", poolID, client, err)
	}
	return client
}

// signInAt is signInPlain for a cognito_login whose path_prefix is prefix.
func signInAt(t *testing.T, ls *loginSite, c *webClient, prefix, next, user string) plainSignIn {
	t.Helper()
	var p plainSignIn
	r := c.navigate(ls.base + prefix + "login?next=" + url.QueryEscape(next))
	if r.Status != http.StatusFound {
		t.Fatalf("GET %slogin: want 302 to the provider, got %s", prefix, r)
	}
	p.authorize = location(t, r)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cb, err := cognitolocal.HostedUISignIn(ctx, p.authorize.String(), user, password)
	if err != nil {
		t.Fatalf("signing in at the hosted UI as %s: %v", user, err)
	}
	if !strings.HasPrefix(cb.String(), ls.base+prefix+"callback?") {
		t.Fatalf("the hosted UI redirected to %s, want %s%scallback?…", cb, ls.base, prefix)
	}
	p.callback, p.before = cb, c.cookies(ls.base)
	p.answer = c.navigate(cb.String())
	return p
}

// wantSignInAt: 302 to loginPath?next=next on this site, never the upstream.
func wantSignInAt(t *testing.T, base string, r result, loginPath, next, what string) {
	t.Helper()
	if r.Upstream != nil || r.Status != http.StatusFound {
		t.Errorf("%s: want 302 to %s, got %s (reached upstream: %v)", what, loginPath, r, r.Upstream != nil)
		return
	}
	loc := location(t, r)
	if (loc.IsAbs() && loc.Scheme+"://"+loc.Host != base) || loc.Path != loginPath || loc.Query().Get("next") != next {
		t.Errorf("%s: Location %q, want %s?next=%s", what, loc, loginPath, url.QueryEscape(next))
	}
}

// wantUnauthenticatedAt: 401 JSON {error: unauthenticated, login_url:
// loginPath?next=next}, never the upstream.
func wantUnauthenticatedAt(t *testing.T, r result, loginPath, next, what string) {
	t.Helper()
	if r.Upstream != nil || r.Status != http.StatusUnauthorized {
		t.Errorf("%s: want 401, got %s (reached upstream: %v)", what, r, r.Upstream != nil)
		return
	}
	var body struct {
		Error    string `json:"error"`
		LoginURL string `json:"login_url"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Errorf("%s: 401 body %q is not JSON: %v", what, r.Body, err)
		return
	}
	lu, err := url.Parse(body.LoginURL)
	if body.Error != "unauthenticated" || err != nil || lu.Path != loginPath || lu.Query().Get("next") != next {
		t.Errorf("%s: 401 body %s, want error unauthenticated and login_url %s?next=%s", what, r.Body, loginPath, url.QueryEscape(next))
	}
}

// ---- 2. only a verified email is passed on ----

// hardeningEmailCaddyfile: ID tokens on /id/* (to the upstream, with the
// placeholder as X-Seen-Email) and /idpage/* (answered by Caddy with the
// placeholder and the raw claim); browser sign-in for anyone elsewhere.
const hardeningEmailCaddyfile = `{
	admin {$CADDY_ADMIN}
	auto_https off
	cognito {
		store sqlite @DB@
		pool main {
			issuer @ISSUER@
			client_id @CLIENT_ID@ @WEB_CLIENT@
			client_secret @CLIENT_SECRET@
			domain @DOMAIN@
		}
	}
}

http://127.0.0.1:@PORT@ {
	handle /id/* {
		cognito_bearer {
			token_use id
		}
		reverse_proxy @UPSTREAM@ {
			header_up X-Seen-Email "{http.auth.user.email}"
		}
	}
	handle /idpage/* {
		cognito_bearer {
			token_use id
		}
		respond "email=[{http.auth.user.email}] claim=[{http.auth.user.claim.email}]"
	}
	handle {
		cognito_login {
			secret @SECRET@
			admit any
		}
		reverse_proxy @UPSTREAM@ {
			header_up X-Seen-Email "{http.auth.user.email}"
		}
	}
}
`

// TestHardeningVerifiedEmailOnly: an ID token whose email is not verified
// (cognito-local's, and minted ones with email_verified false or "false")
// passes cognito_bearer, but neither X-Auth-Email nor
// {http.auth.user.email} carry the address (the raw claim placeholder
// still does); a verified one does. Through cognito_login with `admit any`
// the unverified user signs in, and the upstream gets no X-Auth-Email.
func TestHardeningVerifiedEmailOnly(t *testing.T) {
	s := getStack(t)
	cognitolocal.RequirePatched(t)
	port, err := cognitolocal.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	client := newAppClient(t, s, "email-", fmt.Sprintf("http://127.0.0.1:%d", port))
	ls := newLoginSite(t, s, port, hardeningEmailCaddyfile, map[string]string{
		"@ISSUER@": s.issuer, "@CLIENT_ID@": client.ClientID, "@CLIENT_SECRET@": client.ClientSecret,
		"@WEB_CLIENT@": s.web.ClientID, "@DOMAIN@": s.cl.URL,
	})
	ls.client, ls.issuer = client, s.issuer

	unvEmail := uniqueEmail(t, "ursula", "example.com")
	unv := cognitoUser(t, s, unvEmail, nil, map[string]string{"email_verified": ""})
	verEmail := uniqueEmail(t, "vera", "example.com")
	ver := cognitoUser(t, s, verEmail, nil, nil)
	unvTok := s.login(t, s.web.ClientID, unvEmail).IDToken
	if c, err := cognitolocal.Payload(unvTok); err != nil || c["email"] != unvEmail || c["email_verified"] != false {
		t.Fatalf("cognito-local's ID token for %s: email %v, email_verified %v (%v); want the address, unverified", unvEmail, c["email"], c["email_verified"], err)
	}
	verTok := s.login(t, s.web.ClientID, verEmail).IDToken

	web := newWebClient(t)
	bearer := func(path, tok string) result {
		t.Helper()
		return web.api(http.MethodGet, ls.base+path, nil, "Authorization", "Bearer "+tok)
	}
	seen := func(e *echoed) string {
		for k, v := range e.Headers {
			if strings.EqualFold(k, "X-Seen-Email") {
				return strings.Join(v, ",")
			}
		}
		return ""
	}

	t.Run("cognito_bearer token_use id", func(t *testing.T) {
		minted := s.minter.IDClaims(s.issuer, s.web.ClientID, unv.Sub, unv.Username, unvEmail)
		unverified := map[string]string{
			"cognito-local's token":          unvTok,
			"minted, email_verified false":   s.minter.MustSign(minted.With("email_verified", false)),
			`minted, email_verified "false"`: s.minter.MustSign(minted.With("email_verified", "false")),
			"minted, without email_verified": s.minter.MustSign(minted.With("email_verified", nil)),
		}
		for name, tok := range unverified {
			r := bearer("/id/me", tok)
			if r.Status != 200 || r.Upstream == nil {
				t.Errorf("%s: want the upstream (the token is good), got %s", name, r)
				continue
			}
			h := r.Upstream.authHeaders()
			if got := one(t, h, "x-auth-sub"); got != unv.Sub {
				t.Errorf("%s: X-Auth-Sub = %q, want %q", name, got, unv.Sub)
			}
			if v, ok := h["x-auth-email"]; ok {
				t.Errorf("%s: the upstream got X-Auth-Email %q for an unverified address", name, v)
			}
			if got := seen(r.Upstream); got != "" {
				t.Errorf("%s: {http.auth.user.email} = %q for an unverified address", name, got)
			}
			page := bearer("/idpage/me", tok)
			if want := "email=[] claim=[" + unvEmail + "]"; page.Status != 200 || string(page.Body) != want {
				t.Errorf("%s: /idpage answered %s, want %q", name, page, want)
			}
		}
		verified := map[string]string{
			"cognito-local's token": verTok,
			"minted, verified":      s.minter.MustSign(s.minter.IDClaims(s.issuer, s.web.ClientID, ver.Sub, ver.Username, verEmail)),
		}
		for name, tok := range verified {
			r := bearer("/id/me", tok)
			if r.Upstream == nil {
				t.Errorf("%s: want the upstream, got %s", name, r)
				continue
			}
			if got := one(t, r.Upstream.authHeaders(), "x-auth-email"); got != verEmail {
				t.Errorf("%s: X-Auth-Email = %q, want %q", name, got, verEmail)
			}
			if got := seen(r.Upstream); got != verEmail {
				t.Errorf("%s: {http.auth.user.email} = %q, want %q", name, got, verEmail)
			}
			page := bearer("/idpage/me", tok)
			if want := "email=[" + verEmail + "] claim=[" + verEmail + "]"; string(page.Body) != want {
				t.Errorf("%s: /idpage answered %s, want %q", name, page, want)
			}
		}
	})

	t.Run("cognito_login admit any", func(t *testing.T) {
		c := newWebClient(t)
		ls.signInPlain(t, c, "/profile", unvEmail).wantSignedIn(t, "/profile")
		r := c.navigate(ls.base + "/profile")
		if r.Upstream == nil {
			t.Fatalf("the unverified user's session: %s", r)
		}
		h := r.Upstream.authHeaders()
		if got := one(t, h, "x-auth-sub"); got != unv.Sub {
			t.Errorf("X-Auth-Sub = %q, want %q", got, unv.Sub)
		}
		if v, ok := h["x-auth-email"]; ok {
			t.Errorf("the upstream got X-Auth-Email %q for a user whose address is not verified", v)
		}
		if got := seen(r.Upstream); got != "" {
			t.Errorf("{http.auth.user.email} = %q for a user whose address is not verified", got)
		}
		if u := ls.localUser(t, unv.Username); u.Email != "" {
			t.Errorf("admit any made a local user with the unverified address %q", u.Email)
		}
		var me loginMe
		if m := c.api(http.MethodGet, ls.base+"/auth/me", nil); m.Status != 200 || json.Unmarshal(m.Body, &me) != nil {
			t.Errorf("/auth/me: %s", m)
		} else if me.User.Email != "" || me.Identity.Email != unvEmail || me.Identity.EmailVerified {
			t.Errorf("/auth/me: user.email %q, identity.email %q verified %v; want no user email, the claim shown unverified", me.User.Email, me.Identity.Email, me.Identity.EmailVerified)
		}

		v := newWebClient(t)
		ls.signInPlain(t, v, "/profile", verEmail).wantSignedIn(t, "/profile")
		r = v.navigate(ls.base + "/profile")
		if r.Upstream == nil {
			t.Fatalf("the verified user's session: %s", r)
		}
		if got := one(t, r.Upstream.authHeaders(), "x-auth-email"); got != verEmail {
			t.Errorf("verified user: X-Auth-Email = %q, want %q", got, verEmail)
		}
		if got := seen(r.Upstream); got != verEmail {
			t.Errorf("verified user: {http.auth.user.email} = %q, want %q", got, verEmail)
		}
	})
}

// ---- 3. force_logout only asks ----

// TestHardeningForceLogoutConfirms: a link from another site to
// /auth/login?force_logout=true&next=/x shows a signed-in browser the
// sign-out confirmation (200, a POST form with a csrf field going on to
// sign-in) and signs nobody out; the form, posted, signs out and the
// redirects end at a new sign-in for /x at the provider.
func TestHardeningForceLogoutConfirms(t *testing.T) {
	ls := newCognitoLoginSite(t)
	s := ls.s
	email := uniqueEmail(t, "felix", loginPartnerDom)
	cognitoUser(t, s, email, nil, nil)
	c := newWebClient(t)
	sid := ls.signInPlain(t, c, "/x", email).wantSignedIn(t, "/x")
	if r := c.navigate(ls.base + "/x"); r.Upstream == nil {
		t.Fatalf("signed in: %s", r)
	}

	pageURL := mustParse(t, ls.base+"/auth/login?force_logout=true&next=/x")
	page := c.navigate(pageURL.String(), "Sec-Fetch-Site", "cross-site", "Referer", "http://evil.example/")
	if page.Status != http.StatusOK || !strings.Contains(page.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("force_logout GET from another site: want the 200 confirmation page, got %s (Location %q)", page, page.Header.Get("Location"))
	}
	if sc := setCookie(page, loginSessionName); sc != nil && (sc.Value == "" || sc.MaxAge < 0) {
		t.Errorf("the confirmation page clears the session cookie: %q", sc.Raw)
	}
	action, form := pageForm(t, pageURL, page.Body)
	if len(form.Get("csrf")) < 16 || action.Path != "/auth/logout" || !strings.Contains(strings.ToLower(string(page.Body)), `method="post"`) {
		t.Fatalf("the confirmation page: want a POST form to /auth/logout with a csrf field, got action %s fields %v:\n%s", action, form, page.Body)
	}
	if got := form.Get("next"); got != "/auth/login?next=%2Fx" {
		t.Errorf("the form goes on to %q, want /auth/login?next=%%2Fx", got)
	}
	// Nobody is signed out: the same browser, and the session id elsewhere.
	if r := c.navigate(ls.base + "/x"); r.Upstream == nil || r.Status != 200 {
		t.Fatalf("after the force_logout GET the session ended: %s", r)
	}
	same := newWebClient(t)
	same.setCookie(ls.base, loginSessionName, sid)
	if r := same.navigate(ls.base + "/x"); r.Upstream == nil {
		t.Fatalf("after the force_logout GET the session id is refused: %s", r)
	}
	// Without a session there is nothing to confirm: straight to the provider.
	if r := newWebClient(t).navigate(pageURL.String()); r.Status != http.StatusFound || !strings.HasPrefix(r.Header.Get("Location"), s.cl.URL+"/oauth2/authorize?") {
		t.Errorf("force_logout without a session: want 302 to the hosted UI, got %s (Location %q)", r, r.Header.Get("Location"))
	}

	// The form, posted: sign-out, then the chain to a new sign-in for /x.
	r := c.postForm(action.String(), form, "Origin", ls.base)
	if r.Status != http.StatusSeeOther {
		t.Fatalf("posting the confirmation form: want 303, got %s", r)
	}
	out := location(t, r)
	if !strings.HasPrefix(out.String(), s.cl.URL+"/logout?") || out.Query().Get("logout_uri") != ls.base+"/auth/logout/done" {
		t.Errorf("sign-out went to %s, want %s/logout?…&logout_uri=%s/auth/logout/done", out, s.cl.URL, ls.base)
	}
	back := c.navigate(out.String())
	if back.Status != http.StatusFound || back.Header.Get("Location") != ls.base+"/auth/logout/done" {
		t.Fatalf("cognito-local's /logout answered %s", back)
	}
	done := c.navigate(ls.base + "/auth/logout/done")
	if done.Status != http.StatusSeeOther || done.Header.Get("Location") != "/auth/login?next=%2Fx" {
		t.Fatalf("logout/done: want 303 to /auth/login?next=%%2Fx, got %s (Location %q)", done, done.Header.Get("Location"))
	}
	login := c.navigate(ls.base + done.Header.Get("Location"))
	if login.Status != http.StatusFound {
		t.Fatalf("the new sign-in: %s", login)
	}
	if a := location(t, login); !strings.HasPrefix(a.String(), s.cl.URL+"/oauth2/authorize?") || a.Query().Get("redirect_uri") != ls.base+"/auth/callback" {
		t.Errorf("the new sign-in went to %s, want the hosted UI", a)
	}
	if c.cookie(ls.base, loginSessionName) != "" {
		t.Errorf("the browser still holds a session cookie after signing out")
	}
	wantSignInRedirect(t, ls.base, same.navigate(ls.base+"/x"), "/x")
	// And the new sign-in lands on /x.
	ls.signInPlain(t, c, "/x", email).wantSignedIn(t, "/x")
}

// ---- 4. identity names in request trailers ----

const hardeningTrailersCaddyfile = `{
	admin {$CADDY_ADMIN}
	auto_https off
	cognito {
		store sqlite @DB@
		pool main {
			issuer @ISSUER@
			client_id @CLIENT_ID@ @WEB_CLIENT@
			client_secret @CLIENT_SECRET@
			domain @DOMAIN@
		}
	}
}

http://127.0.0.1:@PORT@ {
	handle /api/* {
		cognito_bearer
		reverse_proxy @UPSTREAM@
	}
	handle {
		cognito_login {
			secret @SECRET@
			admit email_domain @PARTNERS@
		}
		reverse_proxy @UPSTREAM@
	}
}
`

// TestHardeningTrailersStripped: chunked POSTs, written byte by byte on a
// TCP connection, carry X-Auth-User, X_Auth_Roles and X-Checksum as
// trailers, declared in a Trailer header, partly declared, or not at all,
// through cognito_bearer (a valid token) and cognito_login (a live
// session). The upstream reads the body to its end: it gets a declared
// X-Checksum and never an X-Auth name, as trailer or header, and its
// X-Auth-User is the real identity.
func TestHardeningTrailersStripped(t *testing.T) {
	s := getStack(t)
	cognitolocal.RequirePatched(t)
	port, err := cognitolocal.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	client := newAppClient(t, s, "trailers-", fmt.Sprintf("http://127.0.0.1:%d", port))
	ls := newLoginSite(t, s, port, hardeningTrailersCaddyfile, map[string]string{
		"@ISSUER@": s.issuer, "@CLIENT_ID@": client.ClientID, "@CLIENT_SECRET@": client.ClientSecret,
		"@WEB_CLIENT@": s.web.ClientID, "@DOMAIN@": s.cl.URL, "@PARTNERS@": loginPartnerDom,
	})
	ls.client, ls.issuer = client, s.issuer

	email := uniqueEmail(t, "trudy", loginPartnerDom)
	cognitoUser(t, s, email, nil, nil)
	c := newWebClient(t)
	sid := ls.signInPlain(t, c, "/", email).wantSignedIn(t, "/")
	me := c.navigate(ls.base + "/whoami")
	if me.Upstream == nil {
		t.Fatalf("signed in: %s", me)
	}
	localID := one(t, me.Upstream.authHeaders(), "x-auth-user")
	tok := s.login(t, s.web.ClientID, alice).AccessToken

	routes := []struct {
		name, path, user string
		hdr              []string
	}{
		{"cognito_bearer", "/api/upload", s.users[alice].Sub, []string{"Authorization", "Bearer " + tok}},
		{"cognito_login", "/upload", localID, []string{"Cookie", loginSessionName + "=" + sid}},
	}
	trailers := [][2]string{{"X-Auth-User", "admin"}, {"X_Auth_Roles", "admin"}, {"X-Checksum", "abc"}}
	declarations := []struct {
		name, declared string
		wantChecksum   bool
	}{
		{"all declared", "X-Auth-User, X_Auth_Roles, X-Checksum", true},
		{"only X-Checksum declared", "X-Checksum", true},
		{"none declared", "", false},
	}
	for _, rt := range routes {
		for _, d := range declarations {
			t.Run(rt.name+"/"+d.name, func(t *testing.T) {
				hdr := append([]string{"Accept", "application/json", "Content-Type", "text/plain"}, rt.hdr...)
				if d.declared != "" {
					hdr = append(hdr, "Trailer", d.declared)
				}
				r := rawChunkedPost(t, ls.base, rt.path, hdr, "some body in two chunks", trailers)
				if r.Status != 200 || r.Upstream == nil {
					t.Fatalf("want the upstream's answer, got %s", r)
				}
				e := r.Upstream
				if got := one(t, e.authHeaders(), "x-auth-user"); got != rt.user {
					t.Errorf("X-Auth-User = %q, want the real identity %q", got, rt.user)
				}
				for k, v := range e.Headers {
					n := strings.ReplaceAll(strings.ToLower(k), "_", "-")
					if strings.HasPrefix(n, "x-auth-") && strings.Join(v, ",") == "admin" {
						t.Errorf("the trailer's value reached the upstream as header %s: %q", k, v)
					}
				}
				for k, v := range e.Trailers {
					if n := strings.ReplaceAll(strings.ToLower(k), "_", "-"); strings.HasPrefix(n, "x-auth-") {
						t.Errorf("the upstream got trailer %s: %q", k, v)
					}
				}
				got := strings.Join(e.Trailers["X-Checksum"], ",")
				if d.wantChecksum && got != "abc" {
					t.Errorf("the declared trailer X-Checksum did not reach the upstream (trailers %v): the check above would prove nothing", e.Trailers)
				}
				t.Logf("upstream trailers: %v", e.Trailers)
			})
		}
	}
}

// rawChunkedPost writes a chunked POST with the headers hdr (name, value
// pairs, sent as given), body in two chunks and trailers after it, on a
// fresh TCP connection, and reads the answer.
func rawChunkedPost(t *testing.T, base, path string, hdr []string, body string, trailers [][2]string) result {
	t.Helper()
	u := mustParse(t, base)
	conn, err := net.DialTimeout("tcp", u.Host, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }() // the answer is read before
	if err := conn.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: %s\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n", path, u.Host)
	for i := 0; i+1 < len(hdr); i += 2 {
		fmt.Fprintf(&b, "%s: %s\r\n", hdr[i], hdr[i+1])
	}
	b.WriteString("\r\n")
	half := len(body) / 2
	for _, chunk := range []string{body[:half], body[half:]} {
		fmt.Fprintf(&b, "%x\r\n%s\r\n", len(chunk), chunk)
	}
	b.WriteString("0\r\n")
	for _, tr := range trailers {
		fmt.Fprintf(&b, "%s: %s\r\n", tr[0], tr[1])
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer to the chunked POST %s: %v", path, err)
	}
	defer func() { _ = resp.Body.Close() }() // read-only
	data, _ := io.ReadAll(resp.Body)
	r := result{Status: resp.StatusCode, Header: resp.Header, Body: data}
	if resp.Header.Get("X-Echo") == "1" {
		r.Upstream = new(echoed)
		if err := json.Unmarshal(data, r.Upstream); err != nil {
			t.Fatalf("upstream answer %q: %v", data, err)
		}
	}
	return r
}

// ---- 5. sso_migration claims only an unlinked local user ----

// TestHardeningSSOMigrationUnlinked: the local user whose username is B's
// Cognito username is already linked to identity A. B, a migrated user
// (custom:from_sso = "1") whom `admit sso_migration` would match by that
// username, is refused with the 403 page, the admin API's audit log shows
// the refused link on that user, the user keeps identity A alone, and A
// still signs in and browses as that user.
func TestHardeningSSOMigrationUnlinked(t *testing.T) {
	ls := newCognitoLoginSite(t)
	s := ls.s
	bEmail := uniqueEmail(t, "boss.sso", "example.com")
	b := cognitoUser(t, s, bEmail, nil, map[string]string{"custom:from_sso": "1"})
	aEmail := uniqueEmail(t, "boss", "example.com")
	a := cognitoUser(t, s, aEmail, nil, nil)
	if c := idTokenClaims(t, s, bEmail); c["custom:from_sso"] != "1" || c["cognito:username"] != b.Username {
		t.Fatalf("B's ID token: custom:from_sso %v, cognito:username %v; want \"1\" and %q", c["custom:from_sso"], c["cognito:username"], b.Username)
	}
	// The local user: B's Cognito username, already linked to A.
	ls.cliOK(t, "users", "add", "--username", b.Username, "--role", "boss")
	ls.cliOK(t, "users", "link", b.Username, "--pool", "main", "--sub", a.Sub)
	boss := ls.localUser(t, b.Username)
	if len(boss.Identities) != 1 || boss.Identities[0].Sub != a.Sub {
		t.Fatalf("the local user before: %+v, want linked to A only", boss)
	}

	ca := newWebClient(t)
	ls.signInPlain(t, ca, "/boss", aEmail).wantSignedIn(t, "/boss")
	asBoss := func(w *webClient, what string) {
		t.Helper()
		r := w.navigate(ls.base + "/boss/desk")
		if r.Upstream == nil {
			t.Fatalf("%s: want the upstream, got %s", what, r)
		}
		h := r.Upstream.authHeaders()
		if got := one(t, h, "x-auth-user"); got != boss.ID {
			t.Errorf("%s: X-Auth-User = %q, want the local user %q", what, got, boss.ID)
		}
		if got := one(t, h, "x-auth-sub"); got != a.Sub {
			t.Errorf("%s: X-Auth-Sub = %q, want A's sub %q", what, got, a.Sub)
		}
	}
	asBoss(ca, "A before B's attempt")
	refusedBefore := len(refusedLinkEvents(t, ls, boss.ID, b.Sub))

	cb := newWebClient(t)
	p := ls.signInPlain(t, cb, "/boss", bEmail)
	if p.answer.Status != http.StatusForbidden || !strings.Contains(html.UnescapeString(string(p.answer.Body)), loginRefused) {
		t.Errorf("B, matched by sso_migration to a user linked to A: want the 403 refused page, got %s", p.answer)
	}
	if sc := setCookie(p.answer, loginSessionName); sc != nil && sc.Value != "" && sc.MaxAge >= 0 {
		t.Errorf("B's refused sign-in set a session cookie")
	}
	if r := cb.navigate(ls.base + "/boss/desk"); r.Upstream != nil {
		t.Errorf("B reached the upstream: X-Auth-User %v", r.Upstream.authHeaders()["x-auth-user"])
	}
	if n := len(refusedLinkEvents(t, ls, boss.ID, b.Sub)); n != refusedBefore+1 {
		t.Errorf("the audit log has %d refusal entries on %s naming B's sub (%d before), want one more", n, boss.ID, refusedBefore)
	}
	after := ls.localUser(t, b.Username)
	if after.ID != boss.ID || len(after.Identities) != 1 || after.Identities[0].Sub != a.Sub {
		t.Errorf("the local user after B's attempt: %+v, want still linked to A only", after)
	}
	asBoss(ca, "A's session after B's attempt")
	fresh := newWebClient(t)
	ls.signInPlain(t, fresh, "/boss", aEmail).wantSignedIn(t, "/boss")
	asBoss(fresh, "a new sign-in of A")
}

// refusedLinkEvents lists the audit entries on target (through the admin
// API) that record a refused link naming sub.
func refusedLinkEvents(t *testing.T, ls *loginSite, target, sub string) []string {
	t.Helper()
	q := url.Values{"limit": {"1000"}, "target": {target}}
	status, body := (&mappedSite{caddy: ls.caddy}).admin(t, http.MethodGet, "/cognito/audit?"+q.Encode(), nil)
	var events []struct {
		Action, Target, Detail, Actor string
	}
	if status != http.StatusOK || json.Unmarshal(body, &events) != nil {
		t.Fatalf("GET /cognito/audit: HTTP %d %s", status, body)
	}
	var out []string
	for _, e := range events {
		if strings.Contains(e.Action, "refused") && e.Target == target && strings.Contains(e.Detail, sub) {
			out = append(out, fmt.Sprintf("%s %s by %s: %s", e.Action, e.Target, e.Actor, e.Detail))
		}
	}
	return out
}
