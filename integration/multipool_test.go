package integration

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddy-cognito/caddy-cognito/integration/internal/cognitolocal"
)

// Several pools in one handler (issue 13, item 3), with the xcaddy-built
// binary and cognito-local pools: cognito-local signs every pool's tokens
// with the same key, so only the token's iss keeps the pools apart.

// multiPoolCaddyfile: /api/* takes access tokens of pools staff and
// partners, /staff-api/* of staff only; browser sign-in offers both pools
// everywhere else, and /staff/* signs in with staff alone (its own
// path_prefix). Invitation links take sessions of either pool.
const multiPoolCaddyfile = `{
	admin {$CADDY_ADMIN}
	auto_https off
	cognito {
		store sqlite @DB@
		pool staff {
			issuer @S_ISSUER@
			client_id @S_CLIENT_ID@ @S_API_CLIENT@
			client_secret @S_CLIENT_SECRET@
			domain @DOMAIN@
			label "Staff sign-in"
		}
		pool partners {
			issuer @P_ISSUER@
			client_id @P_CLIENT_ID@ @P_API_CLIENT@
			client_secret @P_CLIENT_SECRET@
			domain @DOMAIN@
			label "Partner <portal>"
		}
		invitations {
			base_url http://127.0.0.1:@PORT@
		}
	}
}

http://127.0.0.1:@PORT@ {
	handle /api/* {
		cognito_bearer {
			pool staff partners
		}
		reverse_proxy @UPSTREAM@
	}
	handle /staff-api/* {
		cognito_bearer {
			pool staff
		}
		reverse_proxy @UPSTREAM@
	}
	handle /staff/* {
		cognito_login {
			pool staff
			path_prefix /staff/auth/
			secret @SECRET@
			admit any
		}
		reverse_proxy @UPSTREAM@
	}
	handle {
		cognito_invitations {
			pool staff partners
		}
		cognito_login {
			pool staff partners
			secret @SECRET@
			admit any
		}
		reverse_proxy @UPSTREAM@
	}
}
`

// multiPoolSite is a site on multiPoolCaddyfile, its partners pool and a
// pool of nobody's (not configured).
type multiPoolSite struct {
	*loginSite
	staffPool, partnersPool, strangerPool string
	staffAPI, partnersAPI, strangerAPI    cognitolocal.AppClient
	partners                              cognitolocal.AppClient
}

func newMultiPoolSite(t *testing.T) *multiPoolSite {
	t.Helper()
	s := getStack(t)
	cognitolocal.RequirePatched(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m := &multiPoolSite{staffPool: s.pool.ID}
	for _, p := range []*string{&m.partnersPool, &m.strangerPool} {
		pool, err := s.cl.CreateUserPool(ctx, "mp-"+randomHex(t, 3))
		if err != nil {
			t.Fatal(err)
		}
		*p = pool.ID
	}
	port, err := cognitolocal.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	staff := newAppClient(t, s, "mp-staff-", base)
	m.partners = poolAppClient(t, s, m.partnersPool, "mp-partners-", base+"/auth/")
	for _, c := range []struct {
		client *cognitolocal.AppClient
		pool   string
	}{{&m.staffAPI, m.staffPool}, {&m.partnersAPI, m.partnersPool}, {&m.strangerAPI, m.strangerPool}} {
		if *c.client, err = s.cl.CreateUserPoolClient(ctx, c.pool, "mp-api-"+randomHex(t, 3), cognitolocal.ClientOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	m.loginSite = newLoginSite(t, s, port, multiPoolCaddyfile, map[string]string{
		"@S_ISSUER@": s.issuer, "@S_CLIENT_ID@": staff.ClientID, "@S_CLIENT_SECRET@": staff.ClientSecret, "@S_API_CLIENT@": m.staffAPI.ClientID,
		"@P_ISSUER@": s.cl.Issuer(m.partnersPool), "@P_CLIENT_ID@": m.partners.ClientID, "@P_CLIENT_SECRET@": m.partners.ClientSecret,
		"@P_API_CLIENT@": m.partnersAPI.ClientID, "@DOMAIN@": s.cl.URL,
	})
	m.client, m.issuer = staff, s.issuer
	return m
}

// accessToken signs user in to pool's API client with InitiateAuth.
func accessToken(t *testing.T, s *stack, client cognitolocal.AppClient, user string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tok, err := s.cl.InitiateAuth(ctx, client.ClientID, user, password)
	if err != nil {
		t.Fatalf("InitiateAuth %s: %v", user, err)
	}
	return tok.AccessToken
}

// bearerGet sends token to path on the site.
func (m *multiPoolSite) bearerGet(t *testing.T, path, token string) result {
	t.Helper()
	return newWebClient(t).api(http.MethodGet, m.base+path, nil, "Authorization", "Bearer "+token)
}

// TestMultiPoolBearer: `cognito_bearer { pool staff partners }` passes an
// access token of either pool, naming its pool upstream; a validly signed
// token of a pool not listed (same key, other iss) is 401 invalid_token;
// a one-pool handler still takes only its own pool's tokens.
func TestMultiPoolBearer(t *testing.T) {
	m := newMultiPoolSite(t)
	s := m.s
	staffUser := cognitoUserIn(t, s, m.staffPool, uniqueEmail(t, "sam", "example.com"), nil, nil)
	partnerUser := cognitoUserIn(t, s, m.partnersPool, uniqueEmail(t, "pat", "example.org"), nil, nil)
	strangerUser := cognitoUserIn(t, s, m.strangerPool, uniqueEmail(t, "zed", "example.net"), nil, nil)
	staffTok := accessToken(t, s, m.staffAPI, staffUser.Username)
	partnerTok := accessToken(t, s, m.partnersAPI, partnerUser.Username)
	strangerTok := accessToken(t, s, m.strangerAPI, strangerUser.Username)

	for _, c := range []struct {
		name, token, pool, sub, client string
	}{
		{"staff token", staffTok, "staff", staffUser.Sub, m.staffAPI.ClientID},
		{"partners token", partnerTok, "partners", partnerUser.Sub, m.partnersAPI.ClientID},
	} {
		r := m.bearerGet(t, "/api/things", c.token)
		if r.Upstream == nil {
			t.Fatalf("%s on the two-pool handler: %s", c.name, r)
		}
		h := r.Upstream.authHeaders()
		if one(t, h, "x-auth-pool") != c.pool || one(t, h, "x-auth-sub") != c.sub || one(t, h, "x-auth-client-id") != c.client {
			t.Errorf("%s: upstream identity %v; want pool %s, sub %s, client %s", c.name, h, c.pool, c.sub, c.client)
		}
	}
	for _, c := range []struct{ name, path, token string }{
		{"a token of a pool not listed", "/api/things", strangerTok},
		{"a partners token on the staff-only handler", "/staff-api/things", partnerTok},
	} {
		r := m.bearerGet(t, c.path, c.token)
		if r.Status != http.StatusUnauthorized || r.Upstream != nil || !strings.Contains(r.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("%s: want 401 invalid_token, got %s", c.name, r)
		}
	}
	if r := m.bearerGet(t, "/staff-api/things", staffTok); r.Upstream == nil {
		t.Errorf("a staff token on the staff-only handler: %s", r)
	}
}

// TestMultiPoolLoginChooser: `cognito_login { pool staff partners }`
// sends a navigation to /auth/login, which shows one button per pool with
// its label; the partners button signs in through the partners pool's
// hosted UI and back to next, the upstream told the pool; ?pool=nobody is
// a 400 page. The partners session works on the two-pool part of the site
// and is no session on the staff-only part.
func TestMultiPoolLoginChooser(t *testing.T) {
	m := newMultiPoolSite(t)
	s := m.s
	email := uniqueEmail(t, "paula", "example.org")
	paula := cognitoUserIn(t, s, m.partnersPool, email, nil, nil)
	c := newWebClient(t)

	wantSignInAt(t, m.base, c.navigate(m.base+"/reports?q=1"), "/auth/login", "/reports?q=1", "no session")
	page := c.navigate(m.base + "/auth/login?next=" + url.QueryEscape("/reports?q=1"))
	body := string(page.Body)
	if page.Status != http.StatusOK || !strings.Contains(body, ">Staff sign-in<") || !strings.Contains(body, ">Partner &lt;portal&gt;<") {
		t.Fatalf("the chooser: %s", page)
	}
	var partnersHref string
	for _, h := range htmlHref.FindAllStringSubmatch(body, -1) {
		if strings.Contains(h[1], "pool=partners") {
			partnersHref = strings.ReplaceAll(h[1], "&amp;", "&")
		}
	}
	if partnersHref == "" {
		t.Fatalf("no partners button on the chooser:\n%s", body)
	}
	start := c.navigate(m.base + partnersHref)
	if start.Status != http.StatusFound {
		t.Fatalf("the partners button: %s", start)
	}
	authorize := location(t, start)
	if authorize.Query().Get("client_id") != m.partners.ClientID {
		t.Fatalf("the partners button went to %s; want the partners app client %s", authorize, m.partners.ClientID)
	}
	metricsURL := "http://" + m.caddy.AdminAddr + "/metrics"
	before := scrape(t, metricsURL)
	cb := m.hostedUI(t, authorize, email)
	p := plainSignIn{authorize: authorize, callback: cb, answer: c.navigate(cb.String())}
	p.wantSignedIn(t, "/reports?q=1")
	// Counted as a sign-in of partners (the pool the login request named).
	wantIncrements(t, "the partners sign-in", before, scrape(t, metricsURL), map[string]float64{
		series("signins_total", "pool", "partners", "result", "ok", "rule", "any"): 1,
		series("signins_total", "pool", "staff", "result", "ok", "rule", "any"):    0,
	})
	r := c.navigate(m.base + "/reports?q=1")
	if r.Upstream == nil {
		t.Fatalf("after signing in with partners: %s", r)
	}
	if h := r.Upstream.authHeaders(); one(t, h, "x-auth-pool") != "partners" || one(t, h, "x-auth-sub") != paula.Sub {
		t.Errorf("upstream identity %v; want pool partners, sub %s", h, paula.Sub)
	}

	// ?pool= skips the chooser; an unknown pool is a clear 400.
	if r := newWebClient(t).navigate(m.base + "/auth/login?pool=staff&next=%2Fx"); r.Status != http.StatusFound ||
		location(t, r).Query().Get("client_id") != m.client.ClientID {
		t.Errorf("?pool=staff: want 302 to the staff app client's sign-in, got %s", r)
	}
	if r := newWebClient(t).navigate(m.base + "/auth/login?pool=nobody&next=%2Fx"); r.Status != http.StatusBadRequest ||
		!strings.Contains(string(r.Body), "no sign-in of that name") || len(r.Header.Values("Set-Cookie")) != 0 {
		t.Errorf("?pool=nobody: want the 400 page, got %s", r)
	}

	// The session is bound to partners: none on the staff-only part.
	desk := "/staff/desk-" + randomHex(t, 4) // the upstream counts hits by path across tests
	wantSignInAt(t, m.base, c.navigate(m.base+desk), "/staff/auth/login", desk, "a partners session on /staff")
	if n := s.hitCount(desk); n != 0 {
		t.Errorf("the upstream got %d requests for %s with a partners session", n, desk)
	}
	if r := c.navigate(m.base + "/reports/again"); r.Upstream == nil {
		t.Errorf("the partners session stopped working after /staff: %s", r)
	}
}

// TestMultiPoolInvitation: `cognito_invitations { pool staff partners }`
// takes a session of the second pool: a partners user signed in (admit any
// made her a local user) sees her invitation's "Accept the invitation" form,
// not "Sign in to accept", and the form's POST gives her its role.
func TestMultiPoolInvitation(t *testing.T) {
	m := newMultiPoolSite(t)
	email := uniqueEmail(t, "pia", "example.org")
	pia := cognitoUserIn(t, m.s, m.partnersPool, email, nil, nil)
	c := newWebClient(t)
	start := c.navigate(m.base + "/auth/login?pool=partners&next=%2Fhome")
	if start.Status != http.StatusFound {
		t.Fatalf("sign-in with partners: %s", start)
	}
	authorize := location(t, start)
	p := plainSignIn{authorize: authorize, callback: m.hostedUI(t, authorize, email)}
	p.answer = c.navigate(p.callback.String())
	p.wantSignedIn(t, "/home")

	is := &inviteSite{loginSite: m.loginSite}
	inv := is.invite(t, map[string]any{"email": email, "user": m.localUser(t, email).ID, "roles": []string{"auditor"}})

	pageURL := mustParse(t, inv.AcceptURL)
	page := c.navigate(pageURL.String())
	action, form := pageForm(t, pageURL, page.Body)
	if page.Status != http.StatusOK || form.Get("csrf") == "" || action.Path != pageURL.Path || !strings.Contains(string(page.Body), "Accept the invitation") {
		t.Fatalf("the invitation page for a partners session: want the accept form, got %s", page)
	}
	if r := c.postForm(action.String(), form); r.Status != http.StatusSeeOther {
		t.Fatalf("accepting: want 303, got %s", r)
	}
	r := c.navigate(m.base + "/home")
	if r.Upstream == nil {
		t.Fatalf("after accepting: %s", r)
	}
	if h := r.Upstream.authHeaders(); one(t, h, "x-auth-roles") != "auditor" || one(t, h, "x-auth-sub") != pia.Sub || one(t, h, "x-auth-pool") != "partners" {
		t.Errorf("upstream identity after accepting %v; want roles auditor, sub %s, pool partners", h, pia.Sub)
	}
}
