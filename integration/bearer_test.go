package integration

import (
	"encoding/json"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/caddy-cognito/caddy-cognito/integration/internal/cognitolocal"
)

// decodeList splits an X-Auth-Groups/X-Auth-Scopes value into its items.
func decodeList(t *testing.T, v string) []string {
	t.Helper()
	if v == "" {
		return nil
	}
	var out []string
	for _, item := range strings.Split(v, ",") {
		d, err := url.PathUnescape(item)
		if err != nil {
			t.Fatalf("list item %q of %q is not percent-encoded properly: %v", item, v, err)
		}
		out = append(out, d)
	}
	sort.Strings(out)
	return out
}

func one(t *testing.T, h map[string][]string, name string) string {
	t.Helper()
	v := h[name]
	if len(v) != 1 {
		t.Fatalf("upstream saw %s = %q, want exactly one value (all identity headers: %v)", name, v, h)
	}
	return v[0]
}

func wantUpstream(t *testing.T, r result) map[string][]string {
	t.Helper()
	if r.Status != 200 || r.Upstream == nil {
		t.Fatalf("want 200 from the upstream, got %s", r)
	}
	return r.Upstream.authHeaders()
}

// wantDenied checks a 401/403 answered by the plugin with a Bearer challenge
// and a JSON error body, and that the upstream never saw the request.
func wantDenied(t *testing.T, r result, status int, errCode string) {
	t.Helper()
	if r.Status != status || r.Upstream != nil {
		t.Fatalf("want %d from caddy-cognito, got %s (reached upstream: %v)", status, r, r.Upstream != nil)
	}
	ch := r.Header.Get("Www-Authenticate")
	if !strings.HasPrefix(ch, "Bearer ") || !strings.Contains(ch, `realm="test-api"`) {
		t.Errorf("WWW-Authenticate = %q, want a Bearer challenge with realm=\"test-api\"", ch)
	}
	if errCode != "" && !strings.Contains(ch, `error="`+errCode+`"`) {
		t.Errorf("WWW-Authenticate = %q, want error=%q", ch, errCode)
	}
	var body struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil || body.Error == "" {
		t.Errorf("body %q is not a JSON {error, error_description}: %v", r.Body, err)
	} else if errCode != "" && body.Error != errCode {
		t.Errorf("body error = %q, want %q", body.Error, errCode)
	}
}

func TestUserAccessToken(t *testing.T) {
	s := getStack(t)
	tok := s.login(t, s.web.ClientID, alice)
	h := wantUpstream(t, s.do(t, "/api/things", tok.AccessToken))
	sub := s.users[alice].Sub
	if got := one(t, h, "x-auth-user"); got != sub {
		t.Errorf("X-Auth-User = %q, want sub %q", got, sub)
	}
	if got := one(t, h, "x-auth-sub"); got != sub {
		t.Errorf("X-Auth-Sub = %q, want %q", got, sub)
	}
	// The pool signs users in by email; their username is a generated id.
	if got, want := one(t, h, "x-auth-username"), s.users[alice].Username; got != want || want == "" {
		t.Errorf("X-Auth-Username = %q, want %q", got, want)
	}
	if got := one(t, h, "x-auth-client-id"); got != s.web.ClientID {
		t.Errorf("X-Auth-Client-Id = %q, want %q", got, s.web.ClientID)
	}
	if got := one(t, h, "x-auth-pool"); got != "main" {
		t.Errorf("X-Auth-Pool = %q, want main", got)
	}
	groups := one(t, h, "x-auth-groups")
	if strings.Contains(groups, "ß") || strings.Count(groups, ",") != 2 {
		t.Errorf("X-Auth-Groups = %q: want 3 items with ',' and non-ASCII percent-encoded", groups)
	}
	if got, want := decodeList(t, groups), []string{"Straße,ops", "admins", "staff"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("X-Auth-Groups decodes to %q, want %q", got, want)
	}
	if got := decodeList(t, one(t, h, "x-auth-scopes")); len(got) != 1 || got[0] != "aws.cognito.signin.user.admin" {
		t.Errorf("X-Auth-Scopes = %q", got)
	}
}

func TestNoToken(t *testing.T) {
	s := getStack(t)
	r := s.do(t, "/api/things", "")
	wantDenied(t, r, 401, "")
	if strings.Contains(r.Header.Get("Www-Authenticate"), "invalid_token") {
		t.Errorf("a request without a token should not be told invalid_token: %q", r.Header.Get("Www-Authenticate"))
	}
	wantDenied(t, s.do(t, "/api/things", "", "Authorization", "Basic YWxpY2U6cHc="), 401, "")
}

func TestSpoofedIdentityHeadersNeverReachUpstream(t *testing.T) {
	s := getStack(t)
	tok := s.login(t, s.web.ClientID, bob)
	r := s.do(t, "/api/things", tok.AccessToken,
		"X-Auth-User", "admin-spoof",
		"x-auth-user", "admin-spoof-lower",
		"X_Auth_User", "admin-spoof-underscore",
		"x_auth_groups", "admins",
		"X-Auth-Groups", "admins",
		"X-Auth-Email", "boss@example.com",
		"X-Auth-Local-Roles", "root",
	)
	h := wantUpstream(t, r)
	if got := one(t, h, "x-auth-user"); got != s.users[bob].Sub {
		t.Errorf("X-Auth-User = %q, want bob's sub %q", got, s.users[bob].Sub)
	}
	for name, vals := range h {
		for _, v := range vals {
			if strings.Contains(v, "spoof") || v == "admins" || v == "boss@example.com" || v == "root" {
				t.Errorf("client-sent %s: %q reached the upstream", name, v)
			}
		}
	}
	for k := range r.Upstream.Headers {
		if strings.Contains(k, "_") && strings.HasPrefix(strings.ToLower(k), "x_auth") {
			t.Errorf("underscore variant %q reached the upstream", k)
		}
	}
}

func TestConnectionHeaderCannotStripIdentity(t *testing.T) {
	s := getStack(t)
	tok := s.login(t, s.web.ClientID, alice)
	r := s.do(t, "/api/things", tok.AccessToken, "Connection", "X-Auth-User, X-Auth-Groups, X-Auth-Pool")
	h := wantUpstream(t, r)
	if got := one(t, h, "x-auth-user"); got != s.users[alice].Sub {
		t.Errorf("X-Auth-User = %q, want %q", got, s.users[alice].Sub)
	}
	one(t, h, "x-auth-groups")
	one(t, h, "x-auth-pool")
}

func TestIDTokenWhereAccessRequired(t *testing.T) {
	s := getStack(t)
	tok := s.login(t, s.web.ClientID, alice)
	wantDenied(t, s.do(t, "/api/things", tok.IDToken), 401, "invalid_token")
}

func TestIDTokenRoute(t *testing.T) {
	s := getStack(t)
	tok := s.login(t, s.web.ClientID, alice)
	h := wantUpstream(t, s.do(t, "/id/me", tok.IDToken))
	if got := one(t, h, "x-auth-email"); got != alice {
		t.Errorf("X-Auth-Email = %q, want %q", got, alice)
	}
	// The pool signs users in by email; their username is a generated id.
	if got, want := one(t, h, "x-auth-username"), s.users[alice].Username; got != want || want == "" {
		t.Errorf("X-Auth-Username = %q, want %q", got, want)
	}
	wantDenied(t, s.do(t, "/id/me", tok.AccessToken), 401, "invalid_token")
}

func TestGroupRequirement(t *testing.T) {
	s := getStack(t)
	wantUpstream(t, s.do(t, "/admins/panel", s.login(t, s.web.ClientID, alice).AccessToken))
	wantDenied(t, s.do(t, "/admins/panel", s.login(t, s.web.ClientID, bob).AccessToken), 403, "insufficient_scope")
	// A spoofed groups header does not help.
	wantDenied(t, s.do(t, "/admins/panel", s.login(t, s.web.ClientID, bob).AccessToken, "X-Auth-Groups", "admins"), 403, "insufficient_scope")
}

func TestClientCredentialsScope(t *testing.T) {
	s := getStack(t)
	read := s.minter.MustSign(s.minter.ClientCredentialsClaims(s.issuer, s.machine.ClientID, "api/read", "api/write"))
	h := wantUpstream(t, s.do(t, "/scoped/data", read))
	if got := one(t, h, "x-auth-client-id"); got != s.machine.ClientID {
		t.Errorf("X-Auth-Client-Id = %q, want %q", got, s.machine.ClientID)
	}
	if got := decodeList(t, one(t, h, "x-auth-scopes")); strings.Join(got, " ") != "api/read api/write" {
		t.Errorf("X-Auth-Scopes = %q", got)
	}
	if got := one(t, h, "x-auth-sub"); got != s.machine.ClientID {
		t.Errorf("X-Auth-Sub = %q, want the client id", got)
	}
	write := s.minter.MustSign(s.minter.ClientCredentialsClaims(s.issuer, s.machine.ClientID, "api/write"))
	wantDenied(t, s.do(t, "/scoped/data", write), 403, "insufficient_scope")
	// A user token has only aws.cognito.signin.user.admin.
	wantDenied(t, s.do(t, "/scoped/data", s.login(t, s.web.ClientID, alice).AccessToken), 403, "insufficient_scope")
	// The same token with a client id Caddy does not know.
	other := s.minter.MustSign(s.minter.ClientCredentialsClaims(s.issuer, s.stranger.ClientID, "api/read"))
	wantDenied(t, s.do(t, "/scoped/data", other), 401, "invalid_token")
}

func TestExpiredToken(t *testing.T) {
	s := getStack(t)
	m := *s.minter
	m.Now = func() time.Time { return time.Now().Add(-2 * time.Hour) }
	expired := m.MustSign(m.AccessClaims(s.issuer, s.web.ClientID, s.users[alice].Sub, alice))
	wantDenied(t, s.do(t, "/api/things", expired), 401, "invalid_token")
	// Within the configured leeway (5s) an access token is still good.
	c := s.minter.AccessClaims(s.issuer, s.web.ClientID, s.users[alice].Sub, alice)
	c["exp"] = time.Now().Unix() - 2
	wantUpstream(t, s.do(t, "/api/things", s.minter.MustSign(c)))
}

func TestCookieMode(t *testing.T) {
	s := getStack(t)
	tok := s.login(t, s.web.ClientID, alice)
	h := wantUpstream(t, s.do(t, "/cookie/page", "", "Cookie", "theme=dark; session="+tok.AccessToken))
	if got := one(t, h, "x-auth-user"); got != s.users[alice].Sub {
		t.Errorf("X-Auth-User = %q", got)
	}
	wantUpstream(t, s.do(t, "/cookie/page", tok.AccessToken))
	wantDenied(t, s.do(t, "/cookie/page", "", "Cookie", "theme=dark"), 401, "")
	wantDenied(t, s.do(t, "/cookie/page", "", "Cookie", "session="+cognitolocal.Tamper(tok.AccessToken)), 401, "invalid_token")
	// Routes without the cookie option ignore it.
	wantDenied(t, s.do(t, "/api/things", "", "Cookie", "session="+tok.AccessToken), 401, "")
}

func TestBadTokens(t *testing.T) {
	s := getStack(t)
	tok := s.login(t, s.web.ClientID, alice)
	good := s.minter.AccessClaims(s.issuer, s.web.ClientID, s.users[alice].Sub, alice)
	foreign, err := cognitolocal.NewMinter(cognitolocal.KeyID)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{
		"tampered":      cognitolocal.Tamper(tok.AccessToken),
		"truncated":     tok.AccessToken[:len(tok.AccessToken)-10],
		"garbage":       "not-a-jwt",
		"alg none":      cognitolocal.Unsigned(good),
		"foreign key":   foreign.MustSign(good),
		"unknown kid":   must(s.minter.SignWithHeader(map[string]any{"alg": "RS256", "typ": "JWT", "kid": "nope"}, good)),
		"wrong issuer":  s.minter.MustSign(good.With("iss", s.cl.Issuer("local_other"))),
		"wrong client":  s.login(t, s.stranger.ClientID, alice).AccessToken,
		"no token_use":  s.minter.MustSign(good.With("token_use", nil)),
		"refresh token": tok.RefreshToken,
		"not yet valid": s.minter.MustSign(good.With("nbf", time.Now().Add(time.Hour).Unix())),
		"no exp":        s.minter.MustSign(good.With("exp", nil)),
		"jku header":    must(s.minter.SignWithHeader(map[string]any{"alg": "RS256", "kid": "x", "jku": "http://127.0.0.1:1/jwks.json"}, good)),
	}
	for name, tokStr := range cases {
		t.Run(name, func(t *testing.T) {
			wantDenied(t, s.do(t, "/api/things", tokStr), 401, "invalid_token")
		})
	}
}

func must(s string, err error) string {
	if err != nil {
		panic(err)
	}
	return s
}
