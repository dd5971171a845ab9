package caddycognito

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-cognito/caddy-cognito/internal/admission"
	"github.com/caddy-cognito/caddy-cognito/internal/assertion"
	"github.com/caddy-cognito/caddy-cognito/internal/identity"
	"github.com/caddy-cognito/caddy-cognito/internal/metrics"
	"github.com/caddy-cognito/caddy-cognito/internal/provider"
	"github.com/caddy-cognito/caddy-cognito/internal/seal"
	"github.com/caddy-cognito/caddy-cognito/internal/session"
	"github.com/caddy-cognito/caddy-cognito/internal/urlpolicy"
	"github.com/caddy-cognito/caddy-cognito/internal/web"
	"github.com/caddy-cognito/caddy-cognito/invitations"
	"github.com/caddy-cognito/caddy-cognito/userstore"
)

func init() {
	caddy.RegisterModule(Login{})
}

// Login is an HTTP handler that puts browser sign-in in front of a site.
// A request with a live session passes, with the signed-in user handed to
// the next handlers as `{http.auth.user.*}` placeholders and `X-Auth-*`
// headers (client-sent ones are removed first). Without one, a browser
// navigation is redirected to sign in and any other request gets 401 JSON.
//
// It serves its own endpoints under PathPrefix (default `/auth/`): `login`,
// `callback`, `logout`, `logout/done`, `me` and `verify`, the forward-auth
// endpoint for other proxies (Caddy's `forward_auth`, nginx `auth_request`,
// Traefik `forwardAuth`): 200 with the identity headers for a live
// session, else a 302 to sign in (a navigation) or 401, `?unauthenticated=status`
// always 401 (nginx); the original method and URL, for the return after
// sign-in, are read from `X-Forwarded-Method` and `X-Forwarded-Uri`
// (or `X-Original-URL`/`X-Original-URI`) only from the server's
// `trusted_proxies`. Sign-in is the OAuth
// authorization-code grant with PKCE, state and nonce through the pool's
// Cognito hosted UI (the pool's `domain`), or through any OpenID provider
// found by discovery on the pool's issuer when the pool has no domain.
// Sessions live in the identity store; the browser holds only a random
// session id in an HttpOnly cookie, and tokens never reach it.
//
// Every session belongs to a local user. A Cognito identity that is not
// yet linked to one is admitted by the first matching Admit rule, or
// refused with a 403 page.
type Login struct {
	// Pool names the pool (from the global `cognito` option) users sign in
	// with. Default: the only configured pool. The pool needs a client_id
	// (the first one is used) and normally a client_secret.
	Pool string `json:"pool,omitempty"`

	// Pools lists several pools instead (set Pool or Pools, not both):
	// `{prefix}login` then shows a chooser with one button per pool (its
	// `label`), `{prefix}login?pool=<name>` starts that pool's sign-in at
	// once, and an unknown name gets a 400 page. Each session stays bound
	// to the pool and app client it was signed in with; identities of
	// every pool link to local users as with one pool.
	Pools []string `json:"pools,omitempty"`

	// PathPrefix is where the sign-in endpoints live. Default: `/auth/`.
	// Register `{prefix}callback` as a callback URL of the app client and
	// `{prefix}logout/done` as a sign-out URL.
	PathPrefix string `json:"path_prefix,omitempty"`

	// RedirectURI is the absolute callback URL sent to the provider.
	// Default: built from the request as Caddy sees it (scheme, Host and
	// PathPrefix). `X-Forwarded-Proto`/`-Host` are used only when the
	// request comes from one of the server's `trusted_proxies`.
	RedirectURI string `json:"redirect_uri,omitempty"`

	// Scopes requested at sign-in. Default: `openid email profile`.
	// Cognito issues a refresh token with every code; other providers may
	// want `offline_access`.
	Scopes []string `json:"scopes,omitempty"`

	// Secret is the key that encrypts refresh tokens at rest (at least 32
	// characters; `{env.*}` and `{file.*}` work). Default: the global
	// cognito option's `secret`, else a random key generated once and
	// kept in Caddy's data directory
	// (`cognito/session.key`, mode 0600). PreviousSecrets still decrypt
	// what older secrets sealed, for a rotation without signing everyone
	// out.
	Secret          string   `json:"secret,omitempty"`
	PreviousSecrets []string `json:"previous_secrets,omitempty"`

	// IdleTimeout ends a session unused this long. Default: 8h.
	IdleTimeout caddy.Duration `json:"idle_timeout,omitempty"`

	// SessionLifetime ends a session this long after sign-in, however
	// busy. Default: 168h (7 days).
	SessionLifetime caddy.Duration `json:"session_lifetime,omitempty"`

	// Unauthenticated says what a request without a session gets:
	// `auto` (default: a browser navigation is redirected to sign in, an
	// API or XHR request (JSON Accept, `Sec-Fetch-Mode: cors`, or not
	// GET/HEAD) gets 401 JSON), `redirect` (always redirected) or `status`
	// (always 401 JSON).
	Unauthenticated string `json:"unauthenticated,omitempty"`

	// Require lists authorization rules (scopes, Cognito groups, claims,
	// local roles); all must be met, else a 403 page.
	Require []Requirement `json:"require,omitempty"`

	// AllowPreflight passes a CORS preflight (an `OPTIONS` request with
	// `Access-Control-Request-Method`) without a session to the next
	// handler, which gives the CORS answer, instead of a 401: browsers
	// send preflights without cookies. Off by default.
	AllowPreflight bool `json:"allow_preflight,omitempty"`

	// Admit lists, in order, the rules by which a Cognito identity that
	// is not linked to a local user yet may sign in the first time. With
	// none, only identities already linked (by the CLI or admin API) sign in.
	Admit []AdmitRule `json:"admit,omitempty"`

	// RefusedMessage is shown (403) to an identity no rule admits.
	// Default: "You do not have an account on this site. Ask its
	// administrator for an invitation."
	RefusedMessage string `json:"refused_message,omitempty"`

	// ReturnOrigins lists absolute origins (e.g. `https://admin.example.com`)
	// that `next` may send the browser to after sign-in or sign-out.
	// Same-site relative paths are always allowed; nothing else is.
	ReturnOrigins []string `json:"return_origins,omitempty"`

	// DefaultReturn is where the browser goes when `next` is missing or
	// refused: a same-site path. Default: `/`.
	DefaultReturn string `json:"default_return,omitempty"`

	// Pages replaces built-in pages with the operator's Go html/template
	// files, by name: `forbidden`, `refused`, `error`, `signed_out`,
	// `logout`, `choose` (the pool chooser). Templates get .Title,
	// .Message, .Site, for `logout` .Action, .CSRF and .Next, and for
	// `choose` .Choices (each .Text and .Href).
	Pages map[string]string `json:"pages,omitempty"`

	// HeaderPrefix starts the name of every identity header sent upstream.
	// Default: `X-Auth-`.
	HeaderPrefix string `json:"header_prefix,omitempty"`

	// IdentityHeaders lists which identity headers go upstream (and in the
	// answers of the verify endpoint), or `none`; see
	// Bearer.IdentityHeaders. Default: every one of them.
	IdentityHeaders []string `json:"identity_headers,omitempty"`

	// ForwardToken sends the session's current token to the next handlers
	// (an upstream that calls APIs as the user). Off by default: then no
	// token ever leaves Caddy.
	ForwardToken *ForwardToken `json:"forward_token,omitempty"`

	// Assertion, when true, also sends the signed-in user upstream as a
	// signed ES256 JWT in `{header_prefix}Assertion` (default
	// `X-Auth-Assertion`); see Bearer.Assertion and AssertionConfig.
	Assertion bool `json:"assertion,omitempty"`

	signer   *assertion.Signer
	pool     *Pool
	logger   *zap.Logger
	headers  identity.Headers
	returnTo urlpolicy.ReturnPolicy
	flow     *web.Flow // the endpoints, pages and sign-in flows
	requests *metrics.Requests
}

// ForwardToken is what `forward_token` sends upstream. The token is the
// session's current one: refreshed before it expires, kept sealed with the
// session in the identity store. A session signed in before the option
// was turned on forwards from its next refresh.
type ForwardToken struct {
	// Token is `access` (the access token) or `id` (the ID token).
	Token string `json:"token,omitempty"`
	// Header is the request header that carries it. Default:
	// `Authorization`, as `Bearer <token>`; any other header carries the
	// token alone. The header is removed from every client request first,
	// so that a client cannot send its own. Caddy's logs redact only
	// `Authorization` (and cookies): another header appears in
	// reverse_proxy's debug log like any request header.
	Header string `json:"header,omitempty"`
}

// AdmitRule is one first-sign-in rule of `cognito_login` (see
// admission.Rule for the rules and their fields).
type AdmitRule = admission.Rule

// Session defaults.
const (
	defaultIdleTimeout     = 8 * time.Hour
	defaultSessionLifetime = 7 * 24 * time.Hour
	defaultLoginPrefix     = "/auth/"
)

// CaddyModule returns the Caddy module information.
func (Login) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.cognito_login",
		New: func() caddy.Module { return new(Login) },
	}
}

// Provision finds the pool, opens the identity store, loads the sealing
// key and the pages. The provider's endpoints are found on first use, so
// an unreachable provider never stops Caddy from starting.
func (l *Login) Provision(ctx caddy.Context) error {
	l.logger = ctx.Logger()
	l.setDefaults()
	var err error
	if l.headers, err = identity.NewHeaders(l.HeaderPrefix).Only(l.IdentityHeaders); err != nil {
		return err
	}
	l.requests = metrics.Shared().Requests("login")
	forward := ""
	if f := l.ForwardToken; f != nil {
		if f.Header == "" {
			f.Header = "Authorization"
		}
		forward = f.Token
		l.headers = l.headers.AlsoStrip(f.Header)
		if !strings.EqualFold(f.Header, "Authorization") {
			l.logger.Warn("forward_token header is not Authorization: Caddy's debug logs do not redact it", zap.String("header", f.Header))
		}
	}
	l.returnTo = urlpolicy.ReturnPolicy{AllowedOrigins: l.ReturnOrigins, Default: l.DefaultReturn}
	pools, err := poolsFromContext(ctx, l.Pool, l.Pools)
	if err != nil {
		return err
	}
	for _, p := range pools {
		if len(p.clientIDs) == 0 {
			return fmt.Errorf("pool %q: cognito_login needs a client_id", p.name)
		}
	}
	pool := pools[0]
	l.pool = pool
	if l.signer, err = handlerSigner(l.Assertion, pool.app); err != nil {
		return err
	}
	store, err := pool.app.UserStore()
	if err != nil {
		return err
	}
	sealer, err := l.loadSealer()
	if err != nil {
		return err
	}
	pages, err := web.LoadPages(l.Pages)
	if err != nil {
		return err
	}
	acfg := admission.Config{Store: store, RefusedMessage: l.RefusedMessage, Logger: l.logger}
	for _, a := range l.Admit {
		if a.Rule == "invited" && acfg.Invitations == nil {
			invites, err := pool.app.invitationsSetup()
			if err != nil {
				return fmt.Errorf("admit invited: %w", err)
			}
			svc, opts := invitations.New(store, nil), invitations.AcceptOptions{BindEmail: invites.cfg.BindEmail}
			acfg.Invitations = &admission.Invitations{Messages: invites.messages,
				Accept: func(ctx context.Context, secret string, id invitations.Identity) (*userstore.User, error) {
					u, _, err := svc.Accept(ctx, secret, id, opts)
					return u, err
				}}
		}
	}
	admit, err := admission.New(l.Admit, acfg)
	if err != nil {
		return err
	}
	resolvers := make([]*provider.Resolver, len(pools))
	var choices []web.Choice
	for i, p := range pools {
		resolvers[i] = provider.NewResolver(p.providerPool(), l.Scopes, l.logger)
		if len(pools) > 1 {
			choices = append(choices, web.Choice{Name: p.name, Label: p.Label, Provider: resolvers[i]})
		}
	}
	sessions, err := newLoginSessions(store, sealer, resolvers, pools, forward, time.Duration(l.IdleTimeout), time.Duration(l.SessionLifetime), l.logger)
	if err != nil {
		return err
	}
	l.flow = web.New(web.Config{
		PathPrefix: l.PathPrefix, RedirectURI: l.RedirectURI, Unauthenticated: l.Unauthenticated,
		ReturnTo: l.returnTo, Store: store, Sealer: sealer, Provider: resolvers[0], Choices: choices, Pages: pages, Admit: admit,
		Sessions: sessions, TrustedProxy: fromTrustedProxy, SignIns: metrics.Shared().SignIns(poolNamesOf(pools)...), Logger: l.logger,
	})
	return nil
}

// fromTrustedProxy says whether Caddy found r to come from one of the
// server's trusted_proxies, whose X-Forwarded-* headers count.
func fromTrustedProxy(r *http.Request) bool {
	trusted, _ := caddyhttp.GetVar(r.Context(), caddyhttp.TrustedProxyVarKey).(bool)
	return trusted
}

// newLoginSessions builds the session manager of the pools' first app
// clients (resolvers[i] is pools[i]'s provider; one each); forward is the
// forward_token kind, or "".
func newLoginSessions(store *userstore.Store, sealer *seal.Sealer, resolvers []*provider.Resolver, pools []*Pool, forward string, idle, lifetime time.Duration, logger *zap.Logger) (*session.Manager, error) {
	pool := pools[0]
	cfg := session.Config{
		Pool: pool.name, Issuer: pool.issuer, ClientID: pool.loginClientID(), ForwardToken: forward,
		Idle: idle, Lifetime: lifetime, ChangeCheckAge: changeCheckAge,
		Counters: sessionCounters(),
	}
	if rs := pool.app.roleSyncer(store); rs != nil { // a nil *Syncer must not become a non-nil interface
		cfg.Roles = rs
	}
	for i, r := range resolvers {
		if p := pools[i]; i > 0 {
			cfg.More = append(cfg.More, session.Binding{Pool: p.name, Issuer: p.issuer, ClientID: p.loginClientID(), Provider: r})
		}
	}
	// Cognito names no scopes in its token response: they are read from
	// the access token, verified as one of the pools' own.
	var access interface {
		Verify(ctx context.Context, token string) (*Identity, error)
	}
	if len(pools) > 1 {
		set, err := newIssuerVerifiers(pools, "access")
		if err != nil {
			return nil, err
		}
		access = set
	} else if v := pool.Verifier("access"); v != nil {
		access = v
	}
	if access != nil {
		cfg.AccessScopes = func(ctx context.Context, token string) ([]string, error) {
			id, err := access.Verify(ctx, token)
			if err != nil {
				return nil, err
			}
			return id.Scopes, nil
		}
	}
	return session.New(store, sealer, resolvers[0], cfg, logger), nil
}

func (l *Login) setDefaults() {
	if l.PathPrefix == "" {
		l.PathPrefix = defaultLoginPrefix
	}
	if !strings.HasSuffix(l.PathPrefix, "/") {
		l.PathPrefix += "/"
	}
	if l.IdleTimeout == 0 {
		l.IdleTimeout = caddy.Duration(defaultIdleTimeout)
	}
	if l.SessionLifetime == 0 {
		l.SessionLifetime = caddy.Duration(defaultSessionLifetime)
	}
	if l.Unauthenticated == "" {
		l.Unauthenticated = "auto"
	}
	if l.RefusedMessage == "" {
		l.RefusedMessage = "You do not have an account on this site. Ask its administrator for an invitation."
	}
	if l.HeaderPrefix == "" {
		l.HeaderPrefix = DefaultHeaderPrefix
	}
}

// loadSealer builds the refresh-token sealer from Secret, or from the key
// file in Caddy's data directory.
func (l *Login) loadSealer() (*seal.Sealer, error) {
	repl := caddy.NewReplacer()
	secret, previousSecrets := l.Secret, l.PreviousSecrets
	if secret == "" && l.pool != nil && l.pool.app != nil {
		secret, previousSecrets = l.pool.app.Secret, l.pool.app.PreviousSecrets // the global option's
	}
	var previous [][]byte
	for _, p := range previousSecrets {
		previous = append(previous, []byte(repl.ReplaceKnown(p, "")))
	}
	if secret != "" {
		s, err := seal.New([]byte(repl.ReplaceKnown(secret, "")), previous...)
		if err != nil {
			return nil, fmt.Errorf("secret: %w", err)
		}
		return s, nil
	}
	key, err := seal.LoadOrCreateKeyFile(filepath.Join(caddy.AppDataDir(), "cognito", "session.key"))
	if err != nil {
		return nil, err
	}
	return seal.New(key, previous...)
}

// Validate checks the handler's own settings.
func (l *Login) Validate() error {
	var errs []error
	if !strings.HasPrefix(l.PathPrefix, "/") || strings.ContainsAny(l.PathPrefix, "?#\\ ") || strings.Contains(l.PathPrefix, "//") {
		errs = append(errs, fmt.Errorf("path_prefix %q must be a clean absolute path", l.PathPrefix))
	}
	if l.RedirectURI != "" {
		if err := checkTrustedURL("redirect_uri", l.RedirectURI); err != nil {
			errs = append(errs, err)
		}
	}
	switch l.Unauthenticated {
	case "auto", "redirect", "status":
	default:
		errs = append(errs, fmt.Errorf("unauthenticated must be auto, redirect or status, not %q", l.Unauthenticated))
	}
	if l.IdleTimeout < 0 || l.SessionLifetime < 0 {
		errs = append(errs, errors.New("idle_timeout and session_lifetime must be positive"))
	}
	if time.Duration(l.IdleTimeout) > time.Duration(l.SessionLifetime) {
		errs = append(errs, errors.New("idle_timeout must not exceed session_lifetime"))
	}
	for _, r := range l.Require {
		if err := r.validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := l.returnTo.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := validateHeaderPrefix(l.HeaderPrefix); err != nil {
		errs = append(errs, err)
	}
	if f := l.ForwardToken; f != nil {
		if f.Token != "access" && f.Token != "id" {
			errs = append(errs, fmt.Errorf("forward_token must be access or id, not %q", f.Token))
		}
		if err := validateForwardHeader(f.Header); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (l *Login) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	l.headers.StripRequest(r)
	if rest, ok := strings.CutPrefix(r.URL.Path, l.PathPrefix); ok {
		if rest == verifyEndpoint {
			return l.serveVerify(w, r)
		}
		if h := l.flow.Endpoint(rest); h != nil {
			return h(w, r)
		}
	}
	s, err := l.flow.Session(r)
	switch {
	case errors.Is(err, session.ErrNoSession):
		if l.AllowPreflight && web.IsPreflight(r) {
			return next.ServeHTTP(w, r)
		}
		l.requests.Count(metrics.NoSession)
		return l.flow.AskToSignIn(w, r)
	case err != nil:
		l.requests.Count(metrics.Unavailable)
		l.logger.Error("session check failed", zap.Error(err))
		return l.flow.ShowError(w, r, http.StatusServiceUnavailable, "Sign-in is temporarily unavailable. Please try again shortly.")
	}
	web.StripOurCookies(r.Header)
	if l.ForwardToken != nil {
		if tok := s.ForwardToken(); tok != "" {
			next = tokenForwarder{next: next, header: l.ForwardToken.Header, token: tok}
		}
	}
	refused := false
	err = passIdentity(w, r, replacerOf(r), next, s.Identity(), l.Require, l.headers, s.Headers(), l.signer, func(reason, _ string) error {
		refused = true
		l.requests.Count(metrics.InsufficientScope)
		l.logger.Debug("signed-in user refused", zap.String("user", s.Identity().UserID), zap.String("reason", reason))
		return l.flow.Forbidden(w, r, "You are signed in, but your account may not use this page.")
	})
	if !refused {
		l.requests.Count(metrics.Allowed)
	}
	return err
}

// Cleanup releases nothing of its own: the store and keys belong to the
// cognito app, and sessions are in the store.
func (l *Login) Cleanup() error { return nil }

// Interface guards
var (
	_ caddy.Provisioner           = (*Login)(nil)
	_ caddy.Validator             = (*Login)(nil)
	_ caddy.CleanerUpper          = (*Login)(nil)
	_ caddyhttp.MiddlewareHandler = (*Login)(nil)
)
