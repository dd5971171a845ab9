package caddycognito

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/caddy-cognito/caddy-cognito/internal/assertion"
	"github.com/caddy-cognito/caddy-cognito/internal/identity"
	"github.com/caddy-cognito/caddy-cognito/internal/metrics"
	"github.com/caddy-cognito/caddy-cognito/internal/web"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

func init() {
	caddy.RegisterModule(Bearer{})
}

// Bearer is an HTTP handler that lets a request through only when it
// carries a valid Cognito token (in `Authorization: Bearer …`, or in a
// cookie) that meets every requirement. The verified identity is handed to
// the next handlers as `{http.auth.user.*}` placeholders and as request
// headers (`X-Auth-User`, …) for the upstream; client-sent headers of the
// same names are always removed first.
//
// A request without a token gets 401 with a `WWW-Authenticate: Bearer`
// challenge, a bad token 401 with `error="invalid_token"`, an unmet
// requirement 403 with `error="insufficient_scope"`; each with a short
// JSON body. When the server has `handle_errors` routes, they handle the
// error instead, with the reason in `{http.auth.cognito.error}` and
// `{http.auth.cognito.error_description}`.
type Bearer struct {
	// Pool names the pool (from the global `cognito` option) whose tokens
	// are accepted. Default: the only configured pool.
	Pool string `json:"pool,omitempty"`

	// Pools lists several pools instead, when tokens of any of them are
	// accepted (set Pool or Pools, not both). A token's `iss` picks its
	// pool, with that pool's clients and keys, before its signature is
	// checked; a token of any other issuer is refused (401 invalid_token)
	// without a key fetch. With `users mapped`, each pool's identities map
	// to local users as with one pool.
	Pools []string `json:"pools,omitempty"`

	// TokenUse is the kind of token accepted: `access` (default) or `id`.
	TokenUse string `json:"token_use,omitempty"`

	// Cookie, when set, names a cookie the token may also come from. The
	// `Authorization` header wins when both are present.
	Cookie string `json:"cookie,omitempty"`

	// Require lists authorization rules; all must be met.
	Require []Requirement `json:"require,omitempty"`

	// Realm is the realm named in the `WWW-Authenticate` challenge.
	// Default: `cognito`.
	Realm string `json:"realm,omitempty"`

	// HeaderPrefix starts the name of every identity header sent upstream.
	// Default: `X-Auth-`.
	HeaderPrefix string `json:"header_prefix,omitempty"`

	// IdentityHeaders lists which identity headers go upstream, by the
	// names `user`, `sub`, `username`, `email`, `groups`, `scopes`,
	// `client_id`, `pool` and `roles`, or `none` alone: the identity then
	// reaches the next handlers only as `{http.auth.user.*}` placeholders
	// (and the assertion, when on). Sending fewer headers tells the upstream
	// less and costs less per request. Client-sent headers under the
	// prefix are removed either way. Default: every one of them.
	IdentityHeaders []string `json:"identity_headers,omitempty"`

	// Users says whether a token must belong to a local user: `any`
	// (default: every valid token passes, nothing is stored) or `mapped`
	// (the token's identity, or for a client-credentials token its service
	// account, must map to an active local user in the identity store; the
	// upstream then also gets the local user id in `X-Auth-User` and the
	// roles in `X-Auth-Roles`, and `require role` works). A disabled user
	// is refused on the next request.
	Users string `json:"users,omitempty"`

	// UnmappedMessage is the reason given (403) to a valid token with no
	// active local user. Default: "no active account on this site".
	UnmappedMessage string `json:"unmapped_message,omitempty"`

	// AllowPreflight passes a CORS preflight (an `OPTIONS` request with
	// `Access-Control-Request-Method`) that carries no token to the next
	// handler, which gives the CORS answer: browsers send preflights
	// without credentials. Off by default: such a request gets 401 like
	// any other without a token.
	AllowPreflight bool `json:"allow_preflight,omitempty"`

	// Assertion, when true, also sends the identity upstream as a signed
	// ES256 JWT in `{header_prefix}Assertion` (default `X-Auth-Assertion`),
	// which upstreams can verify against the published keys instead of
	// trusting plain headers. Keys, issuer and lifetime come from the
	// global `cognito` option's `assertion` (see AssertionConfig).
	Assertion bool `json:"assertion,omitempty"`

	signer   *assertion.Signer
	verifier *Verifier
	mapper   *userMapper
	// With several pools: the verifier picked by iss, and the mapper of
	// each pool by name (verifier and mapper above are then nil).
	verifiers *issuerVerifiers
	mappers   map[string]*userMapper
	headers   identity.Headers
	requests  *metrics.Requests
	logger    *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (Bearer) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.cognito_bearer",
		New: func() caddy.Module { return new(Bearer) },
	}
}

// Provision finds the pool and its verifier.
func (b *Bearer) Provision(ctx caddy.Context) error {
	b.logger = ctx.Logger()
	if b.TokenUse == "" {
		b.TokenUse = "access"
	}
	if b.Realm == "" {
		b.Realm = "cognito"
	}
	if b.HeaderPrefix == "" {
		b.HeaderPrefix = DefaultHeaderPrefix
	}
	var err error
	if b.headers, err = identity.NewHeaders(b.HeaderPrefix).Only(b.IdentityHeaders); err != nil {
		return err
	}
	b.requests = metrics.Shared().Requests("bearer")
	pools, err := poolsFromContext(ctx, b.Pool, b.Pools)
	if err != nil {
		return err
	}
	pool := pools[0]
	b.verifier = pool.Verifier(b.TokenUse)
	if b.verifier == nil {
		return fmt.Errorf("token_use %q is not one of: %s", b.TokenUse, strings.Join(tokenUses, ", "))
	}
	switch b.Users {
	case "", "any":
		b.Users = "any"
	case "mapped":
		store, err := pool.app.UserStore()
		if err != nil {
			return err
		}
		rs := pool.app.roleSyncer(store)
		b.mapper = newUserMapper(store, pool.issuer, rs)
		if len(pools) > 1 {
			b.mappers = make(map[string]*userMapper, len(pools))
			for _, p := range pools {
				b.mappers[p.name] = newUserMapper(store, p.issuer, rs)
			}
		}
	default:
		return fmt.Errorf("users must be any or mapped, not %q", b.Users)
	}
	if len(pools) > 1 {
		if b.verifiers, err = newIssuerVerifiers(pools, b.TokenUse); err != nil {
			return err
		}
		b.verifier, b.mapper = nil, nil
	}
	if b.UnmappedMessage == "" {
		b.UnmappedMessage = "no active account on this site"
	}
	b.signer, err = handlerSigner(b.Assertion, pool.app)
	return err
}

// Validate checks the handler's own settings.
func (b *Bearer) Validate() error {
	for _, r := range b.Require {
		if err := r.validate(); err != nil {
			return err
		}
	}
	if strings.ContainsAny(b.Realm, "\"\\\r\n") {
		return fmt.Errorf("realm must not contain quotes, backslashes or line breaks")
	}
	if b.Users != "mapped" && needsRoles(b.Require) {
		return fmt.Errorf("require role needs `users mapped`: roles belong to local users")
	}
	return validateHeaderPrefix(b.HeaderPrefix)
}

// appFromContext loads the `cognito` app.
func appFromContext(ctx caddy.Context) (*App, error) {
	appIface, err := ctx.App("cognito")
	if err != nil {
		return nil, fmt.Errorf("loading cognito app: %w", err)
	}
	return appIface.(*App), nil
}

// poolsFromContext returns a handler's pools: the one named by its `pool`
// (or the only pool), or each of its `pools`, in order.
func poolsFromContext(ctx caddy.Context, one string, many []string) ([]*Pool, error) {
	app, err := appFromContext(ctx)
	if err != nil {
		return nil, err
	}
	return app.handlerPools(one, many)
}

func validateHeaderPrefix(p string) error {
	if len(p) < 2 {
		return fmt.Errorf("header_prefix %q is too short", p)
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if ok := c == '-' || c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'; !ok {
			return fmt.Errorf("header_prefix %q may hold only letters, digits and -", p)
		}
	}
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (b *Bearer) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	b.headers.StripRequest(r)
	repl := replacerOf(r)

	token, err := bearerToken(r, b.Cookie)
	switch {
	case errors.Is(err, ErrNoToken):
		if b.AllowPreflight && web.IsPreflight(r) {
			return next.ServeHTTP(w, r)
		}
		return b.deny(w, r, repl, denial{status: http.StatusUnauthorized, noToken: true, why: metrics.NoToken})
	case err != nil: // a token was offered, but not in a form we read
		return b.deny(w, r, repl, denial{status: http.StatusUnauthorized, code: "invalid_request", reason: err.Error(), why: metrics.InvalidRequest})
	}
	var id *Identity
	if b.verifiers == nil {
		id, err = b.verifier.Verify(r.Context(), token)
	} else {
		id, err = b.verifiers.Verify(r.Context(), token)
	}
	if err != nil {
		var te *TokenError
		if errors.As(err, &te) && te.Unavailable {
			b.logger.Warn("cannot verify tokens: signing keys unavailable", zap.Strings("pools", b.poolNames()), zap.String("reason", te.Reason))
			return b.deny(w, r, repl, denial{status: http.StatusServiceUnavailable, code: "temporarily_unavailable", reason: "signing keys unavailable", why: metrics.Unavailable})
		}
		why := metrics.InvalidToken
		if te == errExpired {
			why = metrics.Expired
		}
		return b.deny(w, r, repl, denial{status: http.StatusUnauthorized, code: "invalid_token", reason: err.Error(), why: why})
	}
	mapper := b.mapper
	if b.mappers != nil {
		mapper = b.mappers[id.Pool]
	}
	if mapper != nil {
		u, err := mapper.lookup(r.Context(), id)
		switch {
		case errors.Is(err, errNotMapped):
			setPlaceholders(r, repl, id)
			return b.deny(w, r, repl, denial{status: http.StatusForbidden, code: "insufficient_scope", reason: b.UnmappedMessage, why: metrics.Unmapped})
		case err != nil:
			b.logger.Error("identity store unavailable", zap.Error(err))
			return b.deny(w, r, repl, denial{status: http.StatusServiceUnavailable, code: "temporarily_unavailable", reason: "identity store unavailable", why: metrics.Unavailable})
		}
		id = id.WithLocalUser(u.ID, u.Roles)
	}
	refused := false
	err = passIdentity(w, r, repl, next, id, b.Require, b.headers, id.HeaderValues(), b.signer, func(reason, scope string) error {
		refused = true
		return b.deny(w, r, repl, denial{status: http.StatusForbidden, code: "insufficient_scope", reason: reason, scope: scope, why: metrics.InsufficientScope})
	})
	if !refused {
		b.requests.Count(metrics.Allowed)
	}
	return err
}

// poolNames names the handler's pools, for its logs.
func (b *Bearer) poolNames() []string {
	if len(b.Pools) > 0 {
		return b.Pools
	}
	if b.verifier != nil {
		return []string{b.verifier.cfg.Pool}
	}
	return nil
}

// bearerToken takes the token from the Authorization header, or else from
// the named cookie. A malformed Authorization header is an error, not a
// reason to fall back to the cookie.
func bearerToken(r *http.Request, cookie string) (string, error) {
	// Indexed, not Header.Values: net/http stores names canonical, and
	// Values would canonicalise the constant again on every request.
	if vals := r.Header["Authorization"]; len(vals) > 0 {
		if len(vals) > 1 {
			return "", errors.New("more than one Authorization header")
		}
		scheme, token, _ := strings.Cut(vals[0], " ")
		if !strings.EqualFold(scheme, "Bearer") {
			if cookie == "" {
				return "", ErrNoToken // another scheme: no bearer token offered
			}
		} else {
			// "Bearer" alone (servers trim the trailing space) is an
			// offer without a token: malformed, not absent.
			token = strings.TrimLeft(token, " ")
			if token == "" {
				return "", errors.New("empty bearer token")
			}
			return token, nil
		}
	}
	if cookie != "" {
		if c, err := r.Cookie(cookie); err == nil && c.Value != "" {
			return c.Value, nil
		}
	}
	return "", ErrNoToken
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Bearer)(nil)
	_ caddy.Validator             = (*Bearer)(nil)
	_ caddyhttp.MiddlewareHandler = (*Bearer)(nil)
)
