package provider

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Resolver is the login handler's way to the pool's authorization
// server. The endpoints (fixed hosted-UI paths, or OpenID discovery) are
// found on first use and kept; a failed discovery is retried on a later
// request, at most once per providerRetry, so a provider that is down at
// start-up neither stops Caddy nor gets hammered.
type Resolver struct {
	pool   Pool
	scopes []string
	logger *zap.Logger

	mu        sync.Mutex
	client    *Client
	lastErr   error
	lastTried time.Time
}

const providerRetry = 5 * time.Second

// NewResolver returns a Resolver for pool's provider, asking for scopes;
// Get resolves its endpoints.
func NewResolver(pool Pool, scopes []string, logger *zap.Logger) *Resolver {
	return &Resolver{pool: pool, scopes: scopes, logger: logger}
}

// Get returns the OIDC client, resolving the endpoints when needed.
func (p *Resolver) Get(ctx context.Context) (*Client, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.client != nil {
		return p.client, nil
	}
	if p.lastErr != nil && time.Since(p.lastTried) < providerRetry {
		return nil, p.lastErr
	}
	p.lastTried = time.Now()
	// Discovery serves every later request, and its failure is kept for
	// providerRetry: it must not end because this one request's client
	// went away, so it runs on its own deadline (EndpointsFor's).
	ep, err := EndpointsFor(context.WithoutCancel(ctx), p.pool.Issuer, p.pool.Domain, nil)
	if err != nil {
		p.lastErr = err
		p.logger.Warn("sign-in provider unavailable", zap.String("pool", p.pool.Name), zap.Error(err))
		return nil, err
	}
	// ID tokens are checked with the pool's key set: it must be the one
	// the provider publishes (a Cognito issuer's keys are at a fixed path;
	// another provider's need the pool's jwks_url).
	if ep.JWKS != "" && ep.JWKS != p.pool.JWKSURL {
		p.lastErr = fmt.Errorf("pool %q: the provider publishes its keys at %s, but the pool uses %s: set the pool's jwks_url", p.pool.Name, ep.JWKS, p.pool.JWKSURL)
		p.logger.Error("sign-in misconfigured", zap.Error(p.lastErr))
		return nil, p.lastErr
	}
	p.client, p.lastErr = NewClient(p.pool, ep, p.scopes, nil), nil
	return p.client, nil
}

// Revoke asks the provider to revoke a refresh token (Cognito's
// /oauth2/revoke, or the discovered revocation_endpoint; RFC 7009). It is
// best effort for the caller, which has already ended the session: an
// error is for the log.
func (c *Client) Revoke(ctx context.Context, refreshToken string) error {
	if c.endpoints.Revoke == "" || refreshToken == "" {
		return nil
	}
	form := url.Values{"token": {refreshToken}, "token_type_hint": {"refresh_token"}, "client_id": {c.clientID}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoints.Revoke, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if c.hasSecret {
		req.SetBasicAuth(url.QueryEscape(c.clientID), url.QueryEscape(c.oauth.ClientSecret))
	}
	resp, err := c.httpClient.Do(req)
	if err != nil {
		return fmt.Errorf("oidc: revoke: revocation endpoint unreachable: %w", errors.Unwrap(err))
	}
	defer func() { _ = resp.Body.Close() }() // read-only: nothing to flush
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("oidc: revoke: revocation endpoint answered %d", resp.StatusCode)
	}
	return nil
}

// LogoutURL is where the browser goes to end its session at the provider,
// coming back to returnTo: Cognito's /logout?client_id=&logout_uri= for a
// hosted-UI pool, the discovered end_session_endpoint (OpenID
// RP-initiated logout) otherwise, or "" when the provider has neither.
func (c *Client) LogoutURL(returnTo string) string {
	var base string
	q := url.Values{"client_id": {c.clientID}}
	switch {
	case c.endpoints.CognitoLogout && c.endpoints.Logout != "":
		base = c.endpoints.Logout
		q.Set("logout_uri", returnTo)
	case c.endpoints.EndSession != "":
		base = c.endpoints.EndSession
		q.Set("post_logout_redirect_uri", returnTo)
	default:
		return ""
	}
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + q.Encode()
}

// Preset returns a Resolver that already holds c: for endpoints known
// without asking the provider (and for tests).
func Preset(c *Client) *Resolver { return &Resolver{client: c} }
