package caddycognito

import (
	"context"
	"net"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-cognito/caddy-cognito/internal/health"
	"github.com/caddy-cognito/caddy-cognito/internal/urlpolicy"
	"github.com/caddy-cognito/caddy-cognito/internal/web"
)

func init() {
	caddy.RegisterModule(HealthHandler{})
}

// HealthHandler answers a health check for load balancers that see only
// the site: 200 `{"status":"ok"}` when every pool holds signing keys and
// the identity store (when one is open) answers, else 503
// `{"status":"unavailable"}`. A request from a loopback address or from
// one of the server's `trusted_proxies` gets the details too (each pool's
// keys and when they were fetched, the store, the failing parts), as the
// admin endpoint's `GET /cognito/health` does. It never passes the
// request on.
type HealthHandler struct {
	checker *health.Checker
}

// CaddyModule returns the Caddy module information.
func (HealthHandler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.cognito_health",
		New: func() caddy.Module { return new(HealthHandler) },
	}
}

// Provision finds the cognito app's pools and store.
func (h *HealthHandler) Provision(ctx caddy.Context) error {
	app, err := appFromContext(ctx)
	if err != nil {
		return err
	}
	h.checker = app.healthChecker()
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (h *HealthHandler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	rep := h.checker.Check(r.Context())
	if fromTrustedProxy(r) || fromLoopback(r) {
		return web.WriteJSON(w, rep.HTTPStatus(), rep.WithoutErrors())
	}
	return web.WriteJSON(w, rep.HTTPStatus(), rep.Summary())
}

// fromLoopback says whether the peer of r is on a loopback address (the
// urlpolicy rule).
func fromLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	return err == nil && urlpolicy.IsLoopbackHost(host)
}

// healthChecker checks the app's pools' key sets and, once a handler has
// opened it, the identity store: a config that uses no store is not
// unhealthy for it.
func (a *App) healthChecker() *health.Checker {
	keys := make(map[string]health.KeySource, len(a.Pools))
	for name, p := range a.Pools {
		keys[name] = p.keys
	}
	return health.New(keys, func(ctx context.Context) (bool, error) {
		a.storeMu.Lock()
		s := a.store
		a.storeMu.Unlock()
		if s == nil {
			return false, nil
		}
		_, err := s.Version(ctx)
		return true, err
	})
}

// Interface guards
var (
	_ caddy.Provisioner           = (*HealthHandler)(nil)
	_ caddyhttp.MiddlewareHandler = (*HealthHandler)(nil)
)
