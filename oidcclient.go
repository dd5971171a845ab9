package caddycognito

// The OpenID Connect client behind browser sign-in (`cognito_login`): where
// a pool's authorization server lives, the authorization-code request with
// state, nonce and PKCE, the code exchange with full ID token verification,
// and refresh. Tokens, codes and secrets never reach logs or error strings:
// errors name the step and, for the token endpoint, the OAuth error code.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/caddy-cognito/caddy-cognito/internal/urlpolicy"
)

// defaultLoginScopes are requested when the login configuration names none.
var defaultLoginScopes = []string{oidc.ScopeOpenID, "email", "profile"}

// discoveryTimeout bounds fetching a provider's discovery document.
const discoveryTimeout = 10 * time.Second

// providerEndpoints are the URLs of one pool's authorization server.
type providerEndpoints struct {
	Authorize, Token, UserInfo, Revoke, Logout, EndSession string
	// JWKS is the discovered jwks_uri ("" for a hosted-UI pool).
	JWKS string
	// CognitoLogout: sign out with Cognito's /logout?client_id=&logout_uri=
	// (Logout) instead of OpenID RP-initiated logout (EndSession).
	CognitoLogout bool
}

// endpointsFor finds the authorization server of a pool. A pool with a
// hosted-UI domain uses Cognito's fixed paths on https://{domain} (or on
// the domain itself when it is a full URL, e.g. http://localhost:9229 for
// cognito-local; plain http only on a loopback host). A pool without one
// uses OpenID discovery on its issuer, fetched once with a timeout; the
// caller keeps the result.
func endpointsFor(ctx context.Context, issuer, domain string, httpClient *http.Client) (providerEndpoints, error) {
	if domain = strings.TrimSpace(domain); domain != "" {
		base, err := hostedUIBase(domain)
		if err != nil {
			return providerEndpoints{}, err
		}
		return providerEndpoints{
			Authorize:     base + "/oauth2/authorize",
			Token:         base + "/oauth2/token",
			UserInfo:      base + "/oauth2/userInfo",
			Revoke:        base + "/oauth2/revoke",
			Logout:        base + "/logout",
			CognitoLogout: true,
		}, nil
	}
	if httpClient == nil {
		httpClient = &http.Client{Timeout: discoveryTimeout}
	}
	ctx, cancel := context.WithTimeout(ctx, discoveryTimeout)
	defer cancel()
	provider, err := oidc.NewProvider(oidc.ClientContext(ctx, httpClient), issuer)
	if err != nil {
		return providerEndpoints{}, fmt.Errorf("openid discovery on %s: %w", issuer, err)
	}
	var extra struct {
		EndSession string `json:"end_session_endpoint"`
		Revocation string `json:"revocation_endpoint"`
		JWKS       string `json:"jwks_uri"`
	}
	if err := provider.Claims(&extra); err != nil {
		return providerEndpoints{}, fmt.Errorf("openid discovery on %s: %w", issuer, err)
	}
	ep := provider.Endpoint()
	e := providerEndpoints{
		Authorize:  ep.AuthURL,
		Token:      ep.TokenURL,
		UserInfo:   provider.UserInfoEndpoint(),
		Revoke:     extra.Revocation,
		EndSession: extra.EndSession,
		JWKS:       extra.JWKS,
	}
	for _, u := range []struct{ name, url string }{
		{"authorization_endpoint", e.Authorize}, {"token_endpoint", e.Token},
		{"userinfo_endpoint", e.UserInfo}, {"revocation_endpoint", e.Revoke},
		{"end_session_endpoint", e.EndSession},
	} {
		required := u.name == "authorization_endpoint" || u.name == "token_endpoint"
		if u.url == "" && !required {
			continue
		}
		if err := urlpolicy.CheckEndpointURL(u.url); err != nil {
			return providerEndpoints{}, fmt.Errorf("openid discovery on %s: %s: %w", issuer, u.name, err)
		}
	}
	return e, nil
}

// hostedUIBase turns a pool's domain setting into a base URL without a
// trailing slash.
func hostedUIBase(domain string) (string, error) {
	raw := domain
	if !strings.Contains(domain, "://") {
		raw = "https://" + domain
	}
	u, err := urlpolicy.ParseBaseURL(raw)
	if errors.Is(err, urlpolicy.ErrNotBaseURL) {
		return "", fmt.Errorf("domain %q is not a host name or a base URL (scheme and host only)", domain)
	}
	if err != nil {
		return "", fmt.Errorf("domain %q: %w", domain, err)
	}
	return u.Scheme + "://" + u.Host, nil
}

// loginRequest is what the login endpoint keeps (in a short-lived cookie)
// between the redirect to the authorization server and the callback.
type loginRequest struct {
	State, Nonce, CodeVerifier, Next, RedirectURI string
	Created                                       time.Time
	// Invitation is the secret of an invitation link the sign-in started
	// from, for `admit invited`; "" when there is none.
	Invitation string `json:",omitempty"`
}

// randomToken returns n random bytes, base64url without padding.
func randomToken(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// newLoginRequest starts a sign-in: 256-bit state and nonce, and a PKCE
// code verifier of 43 unreserved characters (RFC 7636, 32 random bytes).
func newLoginRequest(next, redirectURI string) (loginRequest, error) {
	lr := loginRequest{Next: next, RedirectURI: redirectURI, Created: time.Now()}
	var err error
	if lr.State, err = randomToken(32); err != nil {
		return loginRequest{}, err
	}
	if lr.Nonce, err = randomToken(32); err != nil {
		return loginRequest{}, err
	}
	if lr.CodeVerifier, err = randomToken(32); err != nil {
		return loginRequest{}, err
	}
	return lr, nil
}

// tokenSet is what a successful exchange or refresh yields.
type tokenSet struct {
	AccessToken, RefreshToken, IDToken string
	Expiry                             time.Time
	// Scope is the token response's `scope`, when the provider sends one.
	Scope string
	// IDClaims are the verified ID token's claims (nil when IDTokenMissing).
	IDClaims json.RawMessage
	// RefreshRotated: the response carried a new refresh token. On a
	// refresh without rotation (Cognito's default) RefreshToken is the
	// one that was used, kept.
	RefreshRotated bool
	// IDTokenMissing: a refresh response carried no ID token (Cognito may
	// omit it); IDToken and IDClaims are empty and the caller keeps the
	// ones it has.
	IDTokenMissing bool
}

// errInvalidGrant is the token endpoint's `invalid_grant`: a used, expired
// or foreign code (or PKCE verifier mismatch), or a dead refresh token.
// The login handler restarts sign-in on it.
var errInvalidGrant = errors.New("invalid_grant")

// oauthError is an error answer of the token endpoint. It keeps only the
// OAuth error code: descriptions may echo request values.
type oauthError struct {
	Step   string // "code exchange", "refresh"
	Code   string // e.g. invalid_grant; empty when the body had none
	Status int
}

func (e *oauthError) Error() string {
	code := e.Code
	if code == "" {
		code = "no error code"
	}
	return "oidc: " + e.Step + ": token endpoint answered " + strconv.Itoa(e.Status) + " (" + code + ")"
}

func (e *oauthError) Is(target error) bool {
	return target == errInvalidGrant && e.Code == "invalid_grant"
}

// idTokenError says which check an ID token failed; it never holds the token.
type idTokenError struct {
	Check string // "missing", "verify", "nonce", "azp", "at_hash", "claims"
	Err   error
}

func (e *idTokenError) Error() string {
	if e.Err == nil {
		return "oidc: id token: " + e.Check
	}
	return "oidc: id token: " + e.Check + ": " + e.Err.Error()
}

func (e *idTokenError) Unwrap() error { return e.Err }

// oidcClient signs users in against one pool's authorization server.
type oidcClient struct {
	clientID   string
	hasSecret  bool
	endpoints  providerEndpoints
	scopes     []string
	httpClient *http.Client
	oauth      oauth2.Config // RedirectURL is set per request
	verifier   *oidc.IDTokenVerifier
}

// newOIDCClient builds the client for pool's first app client. The ID
// token verifier checks signatures through the pool's shared KeySet.
func newOIDCClient(pool *Pool, endpoints providerEndpoints, scopes []string, httpClient *http.Client) *oidcClient {
	if len(scopes) == 0 {
		scopes = defaultLoginScopes
	}
	if httpClient == nil {
		httpClient = &http.Client{Timeout: 15 * time.Second}
	}
	var clientID string
	if len(pool.clientIDs) > 0 {
		clientID = pool.clientIDs[0]
	}
	style := oauth2.AuthStyleInParams // public client: client_id in the body
	if pool.clientSecret != "" {
		style = oauth2.AuthStyleInHeader // client_secret_basic
	}
	c := &oidcClient{
		clientID:  clientID,
		hasSecret: pool.clientSecret != "",
		endpoints: endpoints,
		scopes:    append([]string(nil), scopes...),
		oauth: oauth2.Config{
			ClientID:     clientID,
			ClientSecret: pool.clientSecret,
			Endpoint:     oauth2.Endpoint{AuthURL: endpoints.Authorize, TokenURL: endpoints.Token, AuthStyle: style},
			Scopes:       append([]string(nil), scopes...),
		},
		verifier: oidc.NewVerifier(pool.issuer, pool.keys, &oidc.Config{
			ClientID:             clientID,
			SupportedSigningAlgs: []string{oidc.RS256},
		}),
	}
	// Cognito wants client_id in the form even with client_secret_basic,
	// which x/oauth2 leaves out of refresh requests: add it on the way.
	c.httpClient = &http.Client{
		Timeout:       httpClient.Timeout,
		Jar:           httpClient.Jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport:     &clientIDForm{clientID: clientID, next: httpClient.Transport},
	}
	return c
}

// reservedAuthParams cannot be overridden by AuthCodeURL's extra values.
var reservedAuthParams = map[string]bool{
	"response_type": true, "client_id": true, "redirect_uri": true, "scope": true, "state": true,
	"nonce": true, "code_challenge": true, "code_challenge_method": true,
}

// AuthCodeURL is where the browser goes to sign in: response_type=code,
// the configured scopes, state, nonce and the S256 PKCE challenge. extra
// passes provider parameters through, e.g. Cognito's `identity_provider`
// or `idp_identifier` to pick a federated IdP; it cannot replace the
// parameters above.
func (c *oidcClient) AuthCodeURL(lr loginRequest, extra url.Values) string {
	cfg := c.oauth
	cfg.RedirectURL = lr.RedirectURI
	opts := []oauth2.AuthCodeOption{
		oauth2.SetAuthURLParam("nonce", lr.Nonce),
		oauth2.S256ChallengeOption(lr.CodeVerifier),
	}
	for k, vs := range extra {
		if reservedAuthParams[k] || len(vs) == 0 {
			continue
		}
		opts = append(opts, oauth2.SetAuthURLParam(k, vs[0]))
	}
	return cfg.AuthCodeURL(lr.State, opts...)
}

// Exchange trades the callback's code for tokens (client_secret_basic when
// the pool has a secret, else as a public client; with the PKCE verifier)
// and verifies the ID token fully: signature through the pool's keys, iss,
// aud, azp, exp, nonce and at_hash. A refused code is errInvalidGrant.
func (c *oidcClient) Exchange(ctx context.Context, lr loginRequest, code string) (*tokenSet, error) {
	if lr.Nonce == "" || lr.CodeVerifier == "" {
		return nil, errors.New("oidc: code exchange: login request has no nonce or code verifier")
	}
	cfg := c.oauth
	cfg.RedirectURL = lr.RedirectURI
	tok, err := cfg.Exchange(oidc.ClientContext(ctx, c.httpClient), code, oauth2.VerifierOption(lr.CodeVerifier))
	if err != nil {
		return nil, tokenEndpointError("code exchange", err)
	}
	ts, err := c.verifyTokens(ctx, tok, lr.Nonce)
	if err != nil {
		return nil, err
	}
	return ts, nil
}

// Refresh uses a refresh token. Cognito's answer may lack an ID token
// (IDTokenMissing) and carries no new refresh token unless rotation is on
// (RefreshRotated false: RefreshToken is the one given). An ID token that
// is present is verified like at sign-in, except the nonce; the caller
// must check that its `sub` is the session's.
func (c *oidcClient) Refresh(ctx context.Context, refreshToken string) (*tokenSet, error) {
	if refreshToken == "" {
		return nil, errors.New("oidc: refresh: no refresh token")
	}
	src := c.oauth.TokenSource(oidc.ClientContext(ctx, c.httpClient), &oauth2.Token{RefreshToken: refreshToken})
	tok, err := src.Token()
	if err != nil {
		return nil, tokenEndpointError("refresh", err)
	}
	ts, err := c.verifyTokens(ctx, tok, "")
	if err != nil {
		return nil, err
	}
	if ts.RefreshToken == "" {
		ts.RefreshToken = refreshToken
	}
	ts.RefreshRotated = ts.RefreshToken != refreshToken
	return ts, nil
}

// verifyTokens checks a token response. nonce empty means a refresh, where
// the ID token is optional and carries no new nonce to check.
func (c *oidcClient) verifyTokens(ctx context.Context, tok *oauth2.Token, nonce string) (*tokenSet, error) {
	ts := &tokenSet{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, Expiry: tok.Expiry}
	ts.Scope, _ = tok.Extra("scope").(string)
	rawID, _ := tok.Extra("id_token").(string)
	if rawID == "" {
		if nonce != "" {
			return nil, &idTokenError{Check: "missing"}
		}
		ts.IDTokenMissing = true
		return ts, nil
	}
	idt, err := c.verifier.Verify(ctx, rawID)
	if err != nil {
		return nil, &idTokenError{Check: "verify", Err: err}
	}
	if nonce != "" && subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return nil, &idTokenError{Check: "nonce", Err: errors.New("does not match the login request")}
	}
	var claims struct {
		AZP string `json:"azp"`
	}
	if err := idt.Claims(&claims); err != nil {
		return nil, &idTokenError{Check: "claims", Err: err}
	}
	if (len(idt.Audience) > 1 || claims.AZP != "") && claims.AZP != c.clientID {
		return nil, &idTokenError{Check: "azp", Err: errors.New("authorized party is not this client")}
	}
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			return nil, &idTokenError{Check: "at_hash", Err: errors.New("does not match the access token")}
		}
	}
	var raw json.RawMessage
	if err := idt.Claims(&raw); err != nil {
		return nil, &idTokenError{Check: "claims", Err: err}
	}
	ts.IDToken, ts.IDClaims = rawID, raw
	return ts, nil
}

// tokenEndpointError keeps the OAuth error code of a token endpoint answer
// and drops its body.
func tokenEndpointError(step string, err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		return &oauthError{Step: step, Code: safeErrorCode(re.ErrorCode), Status: status}
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return fmt.Errorf("oidc: %s: %w", step, err)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("oidc: %s: token endpoint unreachable: %w", step, ue.Err)
	}
	return fmt.Errorf("oidc: %s: unusable token endpoint answer", step)
}

// safeErrorCode keeps an error code only when it has RFC 6749's shape.
func safeErrorCode(code string) string {
	if len(code) > 64 {
		return "invalid error code"
	}
	for _, r := range code {
		if r != '_' && (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (r < '0' || r > '9') {
			return "invalid error code"
		}
	}
	return code
}

// clientIDForm adds client_id to form-encoded POSTs that lack it: Cognito's
// token endpoint documents it as part of every request.
type clientIDForm struct {
	clientID string
	next     http.RoundTripper
}

const maxTokenRequestBody = 64 << 10

func (t *clientIDForm) RoundTrip(req *http.Request) (*http.Response, error) {
	next := t.next
	if next == nil {
		next = http.DefaultTransport
	}
	if req.Method != http.MethodPost || req.Body == nil || t.clientID == "" ||
		!strings.HasPrefix(req.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		return next.RoundTrip(req)
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, maxTokenRequestBody))
	req.Body.Close()
	if err != nil {
		return nil, err
	}
	form, err := url.ParseQuery(string(body))
	if err == nil && form.Get("client_id") == "" {
		form.Set("client_id", t.clientID)
		body = []byte(form.Encode())
	}
	r := req.Clone(req.Context())
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	return next.RoundTrip(r)
}
