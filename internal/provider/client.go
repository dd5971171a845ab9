// Package provider is the OpenID Connect client behind browser sign-in
// (`cognito_login`): where
// a pool's authorization server lives, the authorization-code request with
// state, nonce and PKCE, the code exchange with full ID token verification,
// and refresh. Tokens, codes and secrets never reach logs or error strings:
// errors name the step and, for the token endpoint, the OAuth error code.
package provider

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

// Endpoints are the URLs of one pool's authorization server.
type Endpoints struct {
	Authorize, Token, UserInfo, Revoke, Logout, EndSession string
	// JWKS is the discovered jwks_uri ("" for a hosted-UI pool).
	JWKS string
	// CognitoLogout: sign out with Cognito's /logout?client_id=&logout_uri=
	// (Logout) instead of OpenID RP-initiated logout (EndSession).
	CognitoLogout bool
}

// EndpointsFor finds the authorization server of a pool. A pool with a
// hosted-UI domain uses Cognito's fixed paths on https://{domain} (or on
// the domain itself when it is a full URL, e.g. http://localhost:9229 for
// cognito-local; plain http only on a loopback host). A pool without one
// uses OpenID discovery on its issuer, fetched once with a timeout; the
// caller keeps the result.
func EndpointsFor(ctx context.Context, issuer, domain string, httpClient *http.Client) (Endpoints, error) {
	if domain = strings.TrimSpace(domain); domain != "" {
		base, err := hostedUIBase(domain)
		if err != nil {
			return Endpoints{}, err
		}
		return Endpoints{
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
		return Endpoints{}, fmt.Errorf("openid discovery on %s: %w", issuer, err)
	}
	var extra struct {
		EndSession string `json:"end_session_endpoint"`
		Revocation string `json:"revocation_endpoint"`
		JWKS       string `json:"jwks_uri"`
	}
	if err := provider.Claims(&extra); err != nil {
		return Endpoints{}, fmt.Errorf("openid discovery on %s: %w", issuer, err)
	}
	ep := provider.Endpoint()
	e := Endpoints{
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
			return Endpoints{}, fmt.Errorf("openid discovery on %s: %s: %w", issuer, u.name, err)
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

// LoginRequest is what the login endpoint keeps (in a short-lived cookie)
// between the redirect to the authorization server and the callback.
type LoginRequest struct {
	State, Nonce, CodeVerifier, Next, RedirectURI string
	Created                                       time.Time
	// Invitation is the secret of an invitation link the sign-in started
	// from, for `admit invited`; "" when there is none.
	Invitation string `json:",omitempty"`
	// Pool is the pool chosen for the sign-in on a handler that offers
	// several; "" on a handler with one.
	Pool string `json:",omitempty"`
}

// RandomToken returns n random bytes, base64url without padding.
func RandomToken(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// NewLoginRequest starts a sign-in: 256-bit state and nonce, and a PKCE
// code verifier of 43 unreserved characters (RFC 7636, 32 random bytes).
func NewLoginRequest(next, redirectURI string) (LoginRequest, error) {
	lr := LoginRequest{Next: next, RedirectURI: redirectURI, Created: time.Now()}
	var err error
	if lr.State, err = RandomToken(32); err != nil {
		return LoginRequest{}, err
	}
	if lr.Nonce, err = RandomToken(32); err != nil {
		return LoginRequest{}, err
	}
	if lr.CodeVerifier, err = RandomToken(32); err != nil {
		return LoginRequest{}, err
	}
	return lr, nil
}

// TokenSet is what a successful exchange or refresh yields.
type TokenSet struct {
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

// ErrInvalidGrant is the token endpoint's `invalid_grant`: a used, expired
// or foreign code (or PKCE verifier mismatch), or a dead refresh token.
// The login handler restarts sign-in on it.
var ErrInvalidGrant = errors.New("invalid_grant")

// OAuthError is an error answer of the token endpoint. It keeps only the
// OAuth error code: descriptions may echo request values.
type OAuthError struct {
	Step   string // "code exchange", "refresh"
	Code   string // e.g. invalid_grant; empty when the body had none
	Status int
}

func (e *OAuthError) Error() string {
	code := e.Code
	if code == "" {
		code = "no error code"
	}
	return "oidc: " + e.Step + ": token endpoint answered " + strconv.Itoa(e.Status) + " (" + code + ")"
}

// Is makes errors.Is(err, ErrInvalidGrant) true for an invalid_grant
// answer from the token endpoint.
func (e *OAuthError) Is(target error) bool {
	return target == ErrInvalidGrant && e.Code == "invalid_grant"
}

// IDTokenError says which check an ID token failed; it never holds the token.
type IDTokenError struct {
	Check string // "missing", "verify", "nonce", "azp", "at_hash", "claims"
	Err   error
}

func (e *IDTokenError) Error() string {
	if e.Err == nil {
		return "oidc: id token: " + e.Check
	}
	return "oidc: id token: " + e.Check + ": " + e.Err.Error()
}

func (e *IDTokenError) Unwrap() error { return e.Err }

// Client signs users in against one pool's authorization server.
type Client struct {
	clientID   string
	hasSecret  bool
	endpoints  Endpoints
	scopes     []string
	httpClient *http.Client
	oauth      oauth2.Config // RedirectURL is set per request
	verifier   *oidc.IDTokenVerifier
}

// Pool is what the sign-in client needs of a configured pool.
type Pool struct {
	Name         string // the configured pool's name, for logs and errors
	Issuer       string // the exact iss of its ID tokens
	Domain       string // the hosted-UI domain; "" means OpenID discovery
	ClientID     string // the app client users sign in with
	ClientSecret string // "" for a public client
	JWKSURL      string // where Keys come from, to check against discovery
	Keys         oidc.KeySet
}

// NewClient builds the client for the pool's app client. The ID token
// verifier checks signatures through the pool's shared key set.
func NewClient(pool Pool, endpoints Endpoints, scopes []string, httpClient *http.Client) *Client {
	if len(scopes) == 0 {
		scopes = defaultLoginScopes
	}
	if httpClient == nil {
		httpClient = &http.Client{Timeout: 15 * time.Second}
	}
	clientID := pool.ClientID
	style := oauth2.AuthStyleInParams // public client: client_id in the body
	if pool.ClientSecret != "" {
		style = oauth2.AuthStyleInHeader // client_secret_basic
	}
	c := &Client{
		clientID:  clientID,
		hasSecret: pool.ClientSecret != "",
		endpoints: endpoints,
		scopes:    append([]string(nil), scopes...),
		oauth: oauth2.Config{
			ClientID:     clientID,
			ClientSecret: pool.ClientSecret,
			Endpoint:     oauth2.Endpoint{AuthURL: endpoints.Authorize, TokenURL: endpoints.Token, AuthStyle: style},
			Scopes:       append([]string(nil), scopes...),
		},
		verifier: oidc.NewVerifier(pool.Issuer, pool.Keys, &oidc.Config{
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
func (c *Client) AuthCodeURL(lr LoginRequest, extra url.Values) string {
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
// aud, azp, exp, nonce and at_hash. A refused code is ErrInvalidGrant.
func (c *Client) Exchange(ctx context.Context, lr LoginRequest, code string) (*TokenSet, error) {
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
func (c *Client) Refresh(ctx context.Context, refreshToken string) (*TokenSet, error) {
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
func (c *Client) verifyTokens(ctx context.Context, tok *oauth2.Token, nonce string) (*TokenSet, error) {
	ts := &TokenSet{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, Expiry: tok.Expiry}
	ts.Scope, _ = tok.Extra("scope").(string)
	rawID, _ := tok.Extra("id_token").(string)
	if rawID == "" {
		if nonce != "" {
			return nil, &IDTokenError{Check: "missing"}
		}
		ts.IDTokenMissing = true
		return ts, nil
	}
	idt, err := c.verifier.Verify(ctx, rawID)
	if err != nil {
		return nil, &IDTokenError{Check: "verify", Err: err}
	}
	if nonce != "" && subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return nil, &IDTokenError{Check: "nonce", Err: errors.New("does not match the login request")}
	}
	var claims struct {
		AZP string `json:"azp"`
	}
	if err := idt.Claims(&claims); err != nil {
		return nil, &IDTokenError{Check: "claims", Err: err}
	}
	if (len(idt.Audience) > 1 || claims.AZP != "") && claims.AZP != c.clientID {
		return nil, &IDTokenError{Check: "azp", Err: errors.New("authorized party is not this client")}
	}
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			return nil, &IDTokenError{Check: "at_hash", Err: errors.New("does not match the access token")}
		}
	}
	var raw json.RawMessage
	if err := idt.Claims(&raw); err != nil {
		return nil, &IDTokenError{Check: "claims", Err: err}
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
		return &OAuthError{Step: step, Code: SafeErrorCode(re.ErrorCode), Status: status}
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

// SafeErrorCode keeps an error code only when it has RFC 6749's shape.
func SafeErrorCode(code string) string {
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
	_ = req.Body.Close() // read into body; a new one replaces it
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
