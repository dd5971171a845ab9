package provider

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-cognito/caddy-cognito/internal/jose"
	"github.com/caddy-cognito/caddy-cognito/internal/jose/josetest"
	"github.com/caddy-cognito/caddy-cognito/internal/standin"
)

// ---- unit tests ----

func TestEndpointsForCognitoDomain(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		domain, base string // base "" means an error is expected
	}{
		{"auth.example.com", "https://auth.example.com"},
		{"myapp.auth.eu-west-1.amazoncognito.com", "https://myapp.auth.eu-west-1.amazoncognito.com"},
		{"https://auth.example.com/", "https://auth.example.com"},
		{"http://localhost:9229", "http://localhost:9229"},
		{"http://127.0.0.1:9229", "http://127.0.0.1:9229"},
		{"http://auth.example.com", ""},
		{"ftp://auth.example.com", ""},
		{"auth.example.com/some/path", ""},
		{"https://user:pw@auth.example.com", ""},
		{"https://auth.example.com?x=1", ""},
	} {
		e, err := EndpointsFor(ctx, "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_X", tc.domain, nil)
		if tc.base == "" {
			if err == nil {
				t.Errorf("domain %q: accepted, want an error (endpoints %+v)", tc.domain, e)
			}
			continue
		}
		if err != nil {
			t.Errorf("domain %q: %v", tc.domain, err)
			continue
		}
		want := Endpoints{
			Authorize: tc.base + "/oauth2/authorize", Token: tc.base + "/oauth2/token",
			UserInfo: tc.base + "/oauth2/userInfo", Revoke: tc.base + "/oauth2/revoke",
			Logout: tc.base + "/logout", CognitoLogout: true,
		}
		if e != want {
			t.Errorf("domain %q:\n got %+v\nwant %+v", tc.domain, e, want)
		}
	}
}

func TestEndpointsForDiscoveryRefusesPlainHTTPEndpoint(t *testing.T) {
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{ // a write error is the client's problem
			"issuer":                 srv.URL,
			"authorization_endpoint": "http://idp.example.com/auth", // not loopback
			"token_endpoint":         srv.URL + "/token",
			"jwks_uri":               srv.URL + "/jwks",
		})
	}))
	defer srv.Close()
	if _, err := EndpointsFor(context.Background(), srv.URL, "", nil); err == nil || !strings.Contains(err.Error(), "authorization_endpoint") {
		t.Fatalf("discovery with a plain-http authorization endpoint: err = %v, want a refusal", err)
	}
}

// TestDiscoveryOutlivesAnAbortedRequest: the client whose request started
// OpenID discovery goes away mid-way. Discovery must finish anyway (it
// serves everyone after), not fail and have its failure kept for the
// next client.
func TestDiscoveryOutlivesAnAbortedRequest(t *testing.T) {
	entered, release := make(chan struct{}, 1), make(chan struct{})
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case entered <- struct{}{}:
			<-release
		default:
		}
		_ = json.NewEncoder(w).Encode(map[string]any{ // a write error is the client's problem
			"issuer":                 srv.URL,
			"authorization_endpoint": srv.URL + "/auth",
			"token_endpoint":         srv.URL + "/token",
			"jwks_uri":               srv.URL + "/jwks",
		})
	}))
	defer srv.Close()
	pool := Pool{Name: "main", Issuer: srv.URL, ClientID: "rp", JWKSURL: srv.URL + "/jwks", Keys: &jose.KeySet{}}
	p := NewResolver(pool, nil, zap.NewNop())

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := p.Get(ctx)
		done <- err
	}()
	<-entered
	cancel() // the browser went away while discovery was under way
	close(release)
	if err := <-done; err != nil {
		t.Logf("the aborted request itself: %v", err)
	}
	if _, err := p.Get(context.Background()); err != nil {
		t.Fatalf("the next request after an aborted one: %v", err)
	}
}

var base64URLChars = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func TestNewLoginRequest(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 200; i++ {
		lr, err := NewLoginRequest("/next?a=1", "https://app.example.com/callback")
		if err != nil {
			t.Fatal(err)
		}
		if lr.Next != "/next?a=1" || lr.RedirectURI != "https://app.example.com/callback" {
			t.Fatalf("next/redirect not kept: %+v", lr)
		}
		if time.Since(lr.Created) > time.Minute || lr.Created.After(time.Now()) {
			t.Fatalf("Created = %v", lr.Created)
		}
		for name, v := range map[string]string{"state": lr.State, "nonce": lr.Nonce, "verifier": lr.CodeVerifier} {
			raw, err := base64.RawURLEncoding.DecodeString(v)
			if err != nil || !base64URLChars.MatchString(v) {
				t.Fatalf("%s %q is not base64url without padding", name, v)
			}
			if len(raw) < 16 {
				t.Fatalf("%s has %d bits, want ≥128", name, len(raw)*8)
			}
			if seen[v] {
				t.Fatalf("%s repeated: %q", name, v)
			}
			seen[v] = true
		}
		// RFC 7636 §4.1: 43–128 characters of [A-Z a-z 0-9 - . _ ~].
		if n := len(lr.CodeVerifier); n < 43 || n > 128 {
			t.Fatalf("verifier length %d, want 43..128", n)
		}
	}
}

func s256(verifier string) string {
	h := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

func TestAuthCodeURL(t *testing.T) {
	pool := Pool{Issuer: "https://issuer.example.com/p", ClientID: "client-1", ClientSecret: "s3cret"}
	ep, err := EndpointsFor(context.Background(), pool.Issuer, "auth.example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	lr, err := NewLoginRequest("/", "https://app.example.com/cb")
	if err != nil {
		t.Fatal(err)
	}
	check := func(c *Client, extra url.Values, wantScope string) url.Values {
		t.Helper()
		u, err := url.Parse(c.AuthCodeURL(lr, extra))
		if err != nil {
			t.Fatal(err)
		}
		if got := u.Scheme + "://" + u.Host + u.Path; got != "https://auth.example.com/oauth2/authorize" {
			t.Fatalf("authorize URL %q", got)
		}
		q := u.Query()
		want := map[string]string{
			"response_type": "code", "client_id": "client-1", "redirect_uri": "https://app.example.com/cb",
			"scope": wantScope, "state": lr.State, "nonce": lr.Nonce,
			"code_challenge": s256(lr.CodeVerifier), "code_challenge_method": "S256",
		}
		for k, v := range want {
			if got := q[k]; len(got) != 1 || got[0] != v {
				t.Errorf("%s = %q, want %q", k, got, v)
			}
		}
		if q.Has("code_verifier") || strings.Contains(u.String(), lr.CodeVerifier) || strings.Contains(u.String(), "s3cret") {
			t.Errorf("the verifier or the secret leaked into the authorize URL: %s", u)
		}
		return q
	}
	c := NewClient(pool, ep, nil, nil)
	check(c, nil, "openid email profile")
	q := check(c, url.Values{"identity_provider": {"Google"}, "state": {"evil"}, "nonce": {"evil"}, "redirect_uri": {"https://evil.example"}}, "openid email profile")
	if q.Get("identity_provider") != "Google" {
		t.Errorf("identity_provider not passed through: %v", q)
	}
	check(NewClient(pool, ep, []string{"openid", "aws.cognito.signin.user.admin"}, nil), nil, "openid aws.cognito.signin.user.admin")
}

func atHash(accessToken string) string {
	h := sha256.Sum256([]byte(accessToken))
	return base64.RawURLEncoding.EncodeToString(h[:len(h)/2])
}

func TestExchangeVerifiesIDToken(t *testing.T) {
	ti := josetest.NewIssuer(t)
	keys := standin.KeySet(t, ti.JWKSURL, jose.KeySetOptions{})
	lr, err := NewLoginRequest("/", "https://app.example.com/cb")
	if err != nil {
		t.Fatal(err)
	}
	const access = "access-token-value"
	goodClaims := func(over map[string]any) map[string]any {
		c := ti.IDClaims(map[string]any{"nonce": lr.Nonce, "at_hash": atHash(access)})
		return josetest.ApplyOverrides(c, over)
	}
	var idToken string
	tokens := standin.NewTokenEndpoint(t, func(form url.Values) (int, any) {
		if form.Get("code") == "used-code" {
			return 400, map[string]any{"error": "invalid_grant", "error_description": "code used-code was already used"}
		}
		return 200, map[string]any{"access_token": access, "id_token": idToken, "refresh_token": "refresh-value", "token_type": "Bearer", "expires_in": 3600}
	})
	pool := Pool{Issuer: ti.URL, ClientID: ti.ClientID, ClientSecret: "s3cret", Keys: keys}
	c := NewClient(pool, Endpoints{Authorize: tokens.URL + "/authorize", Token: tokens.URL + "/token"}, nil, nil)
	ctx := context.Background()

	idToken = ti.Sign(goodClaims(nil))
	ts, err := c.Exchange(ctx, lr, "the-code")
	if err != nil {
		t.Fatalf("valid exchange: %v", err)
	}
	if ts.AccessToken != access || ts.RefreshToken != "refresh-value" || ts.IDToken != idToken || ts.IDTokenMissing {
		t.Errorf("token set %+v", ts)
	}
	if time.Until(ts.Expiry) < 50*time.Minute {
		t.Errorf("expiry %v", ts.Expiry)
	}
	var claims map[string]any
	if err := json.Unmarshal(ts.IDClaims, &claims); err != nil || claims["email"] != "alice@example.com" || claims["nonce"] != lr.Nonce {
		t.Errorf("IDClaims %s (%v)", ts.IDClaims, err)
	}
	auth, form := tokens.Last()
	wantAuth := "Basic " + base64.StdEncoding.EncodeToString([]byte(ti.ClientID+":s3cret"))
	if auth != wantAuth {
		t.Errorf("Authorization %q, want client_secret_basic", auth)
	}
	for k, v := range map[string]string{"grant_type": "authorization_code", "code": "the-code", "code_verifier": lr.CodeVerifier, "redirect_uri": lr.RedirectURI, "client_id": ti.ClientID} {
		if form.Get(k) != v {
			t.Errorf("token request %s = %q, want %q", k, form.Get(k), v)
		}
	}
	if form.Has("client_secret") {
		t.Error("client secret sent in the body as well as the header")
	}

	for _, tc := range []struct {
		name  string
		token string
		check string
	}{
		{"nonce differs", ti.Sign(goodClaims(map[string]any{"nonce": "other"})), "nonce"},
		{"nonce missing", ti.Sign(goodClaims(map[string]any{"nonce": nil})), "nonce"},
		{"at_hash differs", ti.Sign(goodClaims(map[string]any{"at_hash": atHash("other")})), "at_hash"},
		{"other audience", ti.Sign(goodClaims(map[string]any{"aud": "other-client"})), "verify"},
		{"several audiences, no azp", ti.Sign(goodClaims(map[string]any{"aud": []string{ti.ClientID, "other"}})), "azp"},
		{"azp is another client", ti.Sign(goodClaims(map[string]any{"azp": "other"})), "azp"},
		{"other issuer", ti.Sign(goodClaims(map[string]any{"iss": "https://evil.example.com/p"})), "verify"},
		{"expired", ti.Sign(goodClaims(map[string]any{"exp": time.Now().Add(-time.Minute).Unix()})), "verify"},
		{"foreign key", josetest.SignRS256(josetest.RSAKey(t, 2048, "foreign"), josetest.MustJSON(t, map[string]any{"alg": "RS256", "kid": "kid-1", "typ": "JWT"}), josetest.MustJSON(t, goodClaims(nil))), "verify"},
		{"alg none", josetest.B64URL(josetest.MustJSON(t, map[string]any{"alg": "none"})) + "." + josetest.B64URL(josetest.MustJSON(t, goodClaims(nil))) + ".", "verify"},
		{"no id token", "", "missing"},
	} {
		idToken = tc.token
		_, err := c.Exchange(ctx, lr, "the-code")
		var ie *IDTokenError
		if !errors.As(err, &ie) || ie.Check != tc.check {
			t.Errorf("%s: err = %v, want id token check %q", tc.name, err, tc.check)
			continue
		}
		if tc.token != "" && strings.Contains(err.Error(), tc.token[len(tc.token)-20:]) {
			t.Errorf("%s: the error quotes the token: %v", tc.name, err)
		}
	}
	// Several audiences with azp = this client are fine.
	idToken = ti.Sign(goodClaims(map[string]any{"aud": []string{ti.ClientID, "other"}, "azp": ti.ClientID}))
	if _, err := c.Exchange(ctx, lr, "the-code"); err != nil {
		t.Errorf("several audiences, azp = client: %v", err)
	}

	_, err = c.Exchange(ctx, lr, "used-code")
	if !errors.Is(err, ErrInvalidGrant) {
		t.Fatalf("refused code: err = %v, want ErrInvalidGrant", err)
	}
	for _, secret := range []string{"used-code", "s3cret", lr.CodeVerifier, "already used"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error %q contains %q", err, secret)
		}
	}

	// A public client sends no Authorization header and its client_id in the form.
	public := NewClient(Pool{Issuer: ti.URL, ClientID: ti.ClientID, Keys: keys},
		Endpoints{Authorize: tokens.URL + "/authorize", Token: tokens.URL + "/token"}, nil, nil)
	idToken = ti.Sign(goodClaims(nil))
	if _, err := public.Exchange(ctx, lr, "the-code"); err != nil {
		t.Fatalf("public client: %v", err)
	}
	if auth, form := tokens.Last(); auth != "" || form.Get("client_id") != ti.ClientID {
		t.Errorf("public client: Authorization %q, client_id %q", auth, form.Get("client_id"))
	}
}

func TestRefreshKeepsWhatIsMissing(t *testing.T) {
	ti := josetest.NewIssuer(t)
	keys := standin.KeySet(t, ti.JWKSURL, jose.KeySetOptions{})
	var body map[string]any
	tokens := standin.NewTokenEndpoint(t, func(form url.Values) (int, any) {
		if form.Get("refresh_token") == "revoked" {
			return 400, map[string]any{"error": "invalid_grant"}
		}
		return 200, body
	})
	pool := Pool{Issuer: ti.URL, ClientID: ti.ClientID, ClientSecret: "s3cret", Keys: keys}
	c := NewClient(pool, Endpoints{Token: tokens.URL + "/token"}, nil, nil)
	ctx := context.Background()

	// Cognito without rotation: a new access token only.
	body = map[string]any{"access_token": "new-access", "token_type": "Bearer", "expires_in": 3600}
	ts, err := c.Refresh(ctx, "old-refresh")
	if err != nil {
		t.Fatal(err)
	}
	if ts.AccessToken != "new-access" || ts.RefreshToken != "old-refresh" || ts.RefreshRotated || !ts.IDTokenMissing || ts.IDToken != "" || ts.IDClaims != nil {
		t.Errorf("refresh without ID token or rotation: %+v", ts)
	}
	auth, form := tokens.Last()
	if !strings.HasPrefix(auth, "Basic ") || form.Get("grant_type") != "refresh_token" || form.Get("refresh_token") != "old-refresh" || form.Get("client_id") != ti.ClientID {
		t.Errorf("refresh request: auth %q form %v", auth, form)
	}

	// With rotation and a fresh ID token (no nonce on refresh).
	id := ti.Sign(ti.IDClaims(map[string]any{"at_hash": atHash("new-access")}))
	body = map[string]any{"access_token": "new-access", "id_token": id, "refresh_token": "new-refresh", "token_type": "Bearer", "expires_in": 3600}
	ts, err = c.Refresh(ctx, "old-refresh")
	if err != nil {
		t.Fatal(err)
	}
	if ts.RefreshToken != "new-refresh" || !ts.RefreshRotated || ts.IDTokenMissing || ts.IDToken != id || len(ts.IDClaims) == 0 {
		t.Errorf("rotated refresh: %+v", ts)
	}

	// A refreshed ID token is verified too.
	body["id_token"] = ti.Sign(ti.IDClaims(map[string]any{"aud": "other"}))
	if _, err := c.Refresh(ctx, "old-refresh"); err == nil {
		t.Error("refresh accepted an ID token for another audience")
	}
	if _, err := c.Refresh(ctx, "revoked"); !errors.Is(err, ErrInvalidGrant) || strings.Contains(err.Error(), "revoked") {
		t.Errorf("dead refresh token: err = %v, want ErrInvalidGrant without the token", err)
	}
}

// ---- stand-ins ----

// callbackCatcher is the relying party's redirect URI: it records the
// query the authorization server sends the browser back with.
type callbackCatcher struct {
	*httptest.Server
	mu    sync.Mutex
	query url.Values
}

func newCallbackCatcher(t *testing.T) *callbackCatcher {
	c := &callbackCatcher{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.query = r.URL.Query()
		c.mu.Unlock()
		_, _ = io.WriteString(w, "signed in") // a write error is the client's problem
	}))
	t.Cleanup(c.Close)
	return c
}

func (c *callbackCatcher) take() url.Values {
	c.mu.Lock()
	defer c.mu.Unlock()
	q := c.query
	c.query = nil
	return q
}

var hiddenInput = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)"`)

// cognitoLocalAPI calls cognito-local's Cognito JSON API.
func cognitoLocalAPI(t *testing.T, base, op string, in any) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/", bytes.NewReader(josetest.MustJSON(t, in)))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "AWSCognitoIdentityProviderService."+op)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", op, err)
	}
	defer func() { _ = resp.Body.Close() }() // read-only
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("%s: %d %s", op, resp.StatusCode, body)
	}
	var out map[string]any
	if len(body) > 0 {
		if err := json.Unmarshal(body, &out); err != nil {
			t.Fatalf("%s: %v", op, err)
		}
	}
	return out
}

// TestOIDCClientCognitoLocal signs in through cognito-local's hosted UI
// like a browser would, then exchanges and refreshes.
func TestOIDCClientCognitoLocal(t *testing.T) {
	node, script := standin.NodeScript(t, "node_modules/cognito-local/lib/bin/start.js")
	port := standin.FreeLoopbackPort(t)
	base := "http://localhost:" + strconv.Itoa(port)
	standin.StartNode(t, node, script, []string{"PORT=" + strconv.Itoa(port), "HOST=localhost"}, base+"/health")
	cb := newCallbackCatcher(t)
	redirectURI := cb.URL + "/callback"

	poolID := cognitoLocalAPI(t, base, "CreateUserPool", map[string]any{"PoolName": "login"})["UserPool"].(map[string]any)["Id"].(string)
	client := cognitoLocalAPI(t, base, "CreateUserPoolClient", map[string]any{
		"UserPoolId": poolID, "ClientName": "web", "GenerateSecret": true,
		"CallbackURLs": []string{redirectURI}, "AllowedOAuthFlows": []string{"code"},
		"AllowedOAuthFlowsUserPoolClient": true, "AllowedOAuthScopes": []string{"openid", "email", "profile"},
		"ExplicitAuthFlows": []string{"ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"},
	})["UserPoolClient"].(map[string]any)
	clientID, secret := client["ClientId"].(string), client["ClientSecret"].(string)
	if secret == "" {
		t.Fatal("cognito-local made no client secret")
	}
	const user, password = "alice@example.com", "Correct-Horse-1"
	cognitoLocalAPI(t, base, "AdminCreateUser", map[string]any{
		"UserPoolId": poolID, "Username": user, "MessageAction": "SUPPRESS",
		"UserAttributes": []map[string]string{{"Name": "email", "Value": user}, {"Name": "email_verified", "Value": "true"}},
	})
	cognitoLocalAPI(t, base, "AdminSetUserPassword", map[string]any{"UserPoolId": poolID, "Username": user, "Password": password, "Permanent": true})

	issuer := base + "/" + poolID
	keys := jose.NewKeySet(issuer+"/.well-known/jwks.json", jose.KeySetOptions{})
	t.Cleanup(func() { _ = keys.Destruct() }) // always nil: it is a caddy.Destructor
	pool := Pool{Issuer: issuer, ClientID: clientID, ClientSecret: secret, Domain: base, Keys: keys}
	ctx := context.Background()
	ep, err := EndpointsFor(ctx, issuer, pool.Domain, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := NewClient(pool, ep, nil, nil)

	// login drives the hosted UI and returns the code the callback got.
	login := func(lr LoginRequest) string {
		t.Helper()
		resp, err := http.Get(c.AuthCodeURL(lr, nil))
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close() // read-only
		if resp.StatusCode != 200 {
			t.Fatalf("hosted UI: %d %s", resp.StatusCode, page)
		}
		form := url.Values{}
		for _, m := range hiddenInput.FindAllStringSubmatch(string(page), -1) {
			form.Set(m[1], m[2])
		}
		if form.Get("code_challenge") != s256(lr.CodeVerifier) || form.Get("state") != lr.State {
			t.Fatalf("hosted UI form lost the challenge or state: %v", form)
		}
		form.Set("username", user)
		form.Set("password", password)
		resp, err = http.PostForm(ep.Authorize, form) // follows the redirect to the callback
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close() // read-only
		if resp.Request.URL.Path != "/callback" {
			t.Fatalf("sign-in did not reach the callback: %d at %s: %s", resp.StatusCode, resp.Request.URL.Path, body)
		}
		q := cb.take()
		if q.Get("state") != lr.State || q.Get("code") == "" {
			t.Fatalf("callback query %v, want state and code", q)
		}
		return q.Get("code")
	}

	lr, err := NewLoginRequest("/", redirectURI)
	if err != nil {
		t.Fatal(err)
	}
	code := login(lr)
	// cognito-local, patched at install to echo the nonce as Cognito does
	// (testenv/patch-cognito-local.js), passes every ID token check.
	ts0, err := c.Exchange(ctx, lr, code)
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	var claims0 map[string]any
	if err := json.Unmarshal(ts0.IDClaims, &claims0); err != nil || claims0["nonce"] != lr.Nonce || claims0["aud"] != clientID {
		t.Errorf("ID claims %s: want our nonce and aud", ts0.IDClaims)
	}
	// A nonce that is not the login request's is refused.
	lr3, _ := NewLoginRequest("/", redirectURI)
	code3 := login(lr3)
	tampered := lr3
	tampered.Nonce = lr.Nonce
	var ie *IDTokenError
	if _, err := c.Exchange(ctx, tampered, code3); !errors.As(err, &ie) || ie.Check != "nonce" {
		t.Errorf("exchange with another nonce: err = %v, want the nonce check to fail", err)
	}
	// The code is spent: replaying it is invalid_grant.
	if _, err := c.Exchange(ctx, lr, code); !errors.Is(err, ErrInvalidGrant) {
		t.Errorf("replayed code: err = %v, want ErrInvalidGrant", err)
	} else if strings.Contains(err.Error(), code) || strings.Contains(err.Error(), secret) {
		t.Errorf("error %q quotes the code or secret", err)
	}

	// A wrong code_verifier is refused.
	lr2, _ := NewLoginRequest("/", redirectURI)
	code2 := login(lr2)
	bad := lr2
	bad.CodeVerifier = lr.CodeVerifier
	if _, err := c.Exchange(ctx, bad, code2); !errors.Is(err, ErrInvalidGrant) {
		t.Errorf("wrong code_verifier: err = %v, want ErrInvalidGrant", err)
	}

	// Refresh with a refresh token from another way in (USER_PASSWORD_AUTH):
	// refresh tokens are not tied to how the user signed in.
	auth := cognitoLocalAPI(t, base, "InitiateAuth", map[string]any{
		"AuthFlow": "USER_PASSWORD_AUTH", "ClientId": clientID,
		"AuthParameters": map[string]string{"USERNAME": user, "PASSWORD": password},
	})["AuthenticationResult"].(map[string]any)
	refresh := auth["RefreshToken"].(string)
	ts, err := c.Refresh(ctx, refresh)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if ts.AccessToken == "" || ts.AccessToken == auth["AccessToken"] {
		t.Errorf("refresh gave no new access token")
	}
	if ts.RefreshRotated || ts.RefreshToken != refresh {
		t.Errorf("cognito-local does not rotate: RefreshRotated %v, kept %v", ts.RefreshRotated, ts.RefreshToken == refresh)
	}
	if ts.IDTokenMissing || ts.IDToken == "" {
		t.Errorf("cognito-local returns an ID token on refresh; got IDTokenMissing %v", ts.IDTokenMissing)
	} else {
		var claims map[string]any
		if err := json.Unmarshal(ts.IDClaims, &claims); err != nil {
			t.Errorf("refreshed ID claims: %v", err)
		}
		if claims["email"] != user || claims["aud"] != clientID || claims["token_use"] != "id" {
			t.Errorf("refreshed ID claims %s", ts.IDClaims)
		}
	}
	if _, err := c.Refresh(ctx, "not-a-refresh-token"); !errors.Is(err, ErrInvalidGrant) {
		t.Errorf("unknown refresh token: err = %v, want ErrInvalidGrant", err)
	}
}

// TestOIDCClientOIDCProvider runs discovery and a full sign-in against
// oidc-provider (a certified OpenID provider) through its devInteractions
// login and consent forms, with nonce, PKCE, client_secret_basic and refresh.
func TestOIDCClientOIDCProvider(t *testing.T) {
	node, script := standin.NodeScript(t, "oidc-provider-server.js")
	if _, err := os.Stat(filepath.Join(filepath.Dir(script), "node_modules", "oidc-provider")); err != nil {
		standin.Missing(t, "oidc-provider is not installed in testenv/node_modules")
	}
	cb := newCallbackCatcher(t)
	redirectURI := cb.URL + "/callback"
	port := standin.FreeLoopbackPort(t)
	issuer := "http://127.0.0.1:" + strconv.Itoa(port)
	standin.StartNode(t, node, script, []string{
		"PORT=" + strconv.Itoa(port), "CLIENT_ID=rp", "CLIENT_SECRET=rp-secret", "REDIRECT_URI=" + redirectURI,
	}, issuer+"/.well-known/openid-configuration")

	ctx := context.Background()
	ep, err := EndpointsFor(ctx, issuer, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Endpoints{
		Authorize: issuer + "/auth", Token: issuer + "/token", UserInfo: issuer + "/me",
		Revoke: issuer + "/token/revocation", EndSession: issuer + "/session/end", JWKS: issuer + "/jwks",
	}
	if ep != want {
		t.Errorf("discovered endpoints\n got %+v\nwant %+v", ep, want)
	}
	keys := jose.NewKeySet(issuer+"/jwks", jose.KeySetOptions{})
	t.Cleanup(func() { _ = keys.Destruct() }) // always nil: it is a caddy.Destructor
	pool := Pool{Issuer: issuer, ClientID: "rp", ClientSecret: "rp-secret", Keys: keys}
	c := NewClient(pool, ep, []string{"openid", "email", "profile", "offline_access"}, nil)

	lr, err := NewLoginRequest("/", redirectURI)
	if err != nil {
		t.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	// signIn follows redirects and fills devInteractions' forms like a browser.
	signIn := func(lr LoginRequest) url.Values {
		t.Helper()
		resp, err := browser.Get(c.AuthCodeURL(lr, url.Values{"prompt": {"consent"}}))
		for step := 0; step < 6; step++ {
			if err != nil {
				t.Fatal(err)
			}
			page, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close() // read-only
			if resp.Request.URL.Path == "/callback" {
				q := cb.take()
				if q.Get("state") != lr.State || q.Get("code") == "" || q.Get("iss") != issuer {
					t.Fatalf("callback query %v", q)
				}
				return q
			}
			m := standin.FormAction.FindStringSubmatch(string(page))
			if resp.StatusCode != 200 || m == nil {
				t.Fatalf("unexpected page %d at %s:\n%.2000s", resp.StatusCode, resp.Request.URL, page)
			}
			action, _ := resp.Request.URL.Parse(m[1])
			var form url.Values
			switch {
			case strings.Contains(string(page), `name="prompt" value="login"`):
				form = url.Values{"prompt": {"login"}, "login": {"alice"}, "password": {"anything"}}
			case strings.Contains(string(page), `name="prompt" value="consent"`):
				form = url.Values{"prompt": {"consent"}}
			default:
				t.Fatalf("neither login nor consent form at %s:\n%.2000s", resp.Request.URL, page)
			}
			resp, err = browser.PostForm(action.String(), form)
		}
		t.Fatal("sign-in did not reach the callback")
		return nil
	}
	q := signIn(lr)
	ts, err := c.Exchange(ctx, lr, q.Get("code"))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(ts.IDClaims, &claims); err != nil || claims["sub"] != "alice" || claims["nonce"] != lr.Nonce || claims["aud"] != "rp" {
		t.Errorf("ID claims %s (%v)", ts.IDClaims, err)
	}
	if ts.AccessToken == "" || ts.RefreshToken == "" {
		t.Fatalf("exchange gave access %v, refresh %v", ts.AccessToken != "", ts.RefreshToken != "")
	}
	lr2, _ := NewLoginRequest("/", redirectURI)
	q2 := signIn(lr2)
	tampered := lr2
	tampered.Nonce = lr.Nonce
	var ie *IDTokenError
	if _, err := c.Exchange(ctx, tampered, q2.Get("code")); !errors.As(err, &ie) || ie.Check != "nonce" {
		t.Errorf("exchange with a tampered nonce: err = %v, want the nonce check to fail", err)
	}

	rs, err := c.Refresh(ctx, ts.RefreshToken)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if rs.AccessToken == "" || rs.AccessToken == ts.AccessToken {
		t.Error("refresh gave no new access token")
	}
	if rs.IDTokenMissing {
		t.Error("oidc-provider returns an ID token on refresh")
	}
	// oidc-provider rotates refresh tokens of confidential clients only
	// when told to; either way the set must say which one to keep.
	if rs.RefreshRotated != (rs.RefreshToken != ts.RefreshToken) || rs.RefreshToken == "" {
		t.Errorf("refresh token bookkeeping: rotated %v", rs.RefreshRotated)
	}
	// Replaying the code is invalid_grant, and oidc-provider then revokes
	// what that code gave (RFC 6749 §4.1.2): the refresh token dies too.
	if _, err := c.Exchange(ctx, lr, q.Get("code")); !errors.Is(err, ErrInvalidGrant) {
		t.Errorf("replayed code: err = %v, want ErrInvalidGrant", err)
	}
	if _, err := c.Refresh(ctx, rs.RefreshToken); !errors.Is(err, ErrInvalidGrant) {
		t.Errorf("refresh after code replay: err = %v, want ErrInvalidGrant", err)
	}
}
