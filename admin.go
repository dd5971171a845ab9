package caddycognito

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-cognito/caddy-cognito/internal/adminapi"
	"github.com/caddy-cognito/caddy-cognito/internal/assertion"
	"github.com/caddy-cognito/caddy-cognito/userstore"
)

func init() {
	caddy.RegisterModule(adminAPI{})
}

// adminAPI serves the identity store's operations (internal/adminapi) on
// Caddy's admin endpoint under /cognito/, JSON in and out. The `caddy
// cognito` CLI runs the same operations in-process against the store, so
// both always agree.
type adminAPI struct {
	api *adminapi.API
	app *App
}

// CaddyModule returns the Caddy module information.
func (adminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.cognito",
		New: func() caddy.Module { return new(adminAPI) },
	}
}

// Provision finds the cognito app, if the running config has one.
func (a *adminAPI) Provision(ctx caddy.Context) error {
	appIface, err := ctx.AppIfConfigured("cognito")
	if err != nil {
		return nil // no cognito app: the routes answer 404
	}
	app := appIface.(*App)
	a.app = app
	issuers := make(map[string]string, len(app.Pools))
	for name, p := range app.Pools {
		issuers[name] = p.issuer
	}
	a.api = newAdminOperations(issuers, app.UserStore, app.invites)
	return nil
}

// newAdminOperations builds the operations; invites may be nil.
func newAdminOperations(issuers map[string]string, store func() (*userstore.Store, error), invites *inviteSetup) *adminapi.API {
	cfg := adminapi.Config{Issuers: issuers, Store: store}
	if invites != nil {
		cfg.Invites = invites
	}
	return adminapi.New(cfg)
}

// Routes implements caddy.AdminRouter.
func (a *adminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{
		Pattern: "/cognito/",
		Handler: caddy.AdminHandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			if a.api == nil {
				return caddy.APIError{HTTPStatus: http.StatusNotFound, Err: errors.New("the cognito app is not configured")}
			}
			status, result, err := a.api.Do(r, "admin-api")
			if err != nil {
				return caddy.APIError{HTTPStatus: adminapi.StatusFor(err), Err: err}
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			return enc.Encode(result)
		}),
	}, {
		// GET /cognito/assertion/jwks.json: the assertion keys, as
		// cognito_assertion_keys serves them on a site.
		Pattern: "/cognito/assertion/jwks.json",
		Handler: caddy.AdminHandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			var signer *assertion.Signer
			if a.app != nil {
				signer = a.app.publishedSigner()
			}
			if signer == nil {
				return caddy.APIError{HTTPStatus: http.StatusNotFound, Err: errors.New("no identity assertions are configured")}
			}
			signer.ServeJWKS(w, r)
			return nil
		}),
	}}
}

// The invitations configuration as the admin operations see it.
func (s *inviteSetup) DefaultTTL() time.Duration { return time.Duration(s.cfg.Expires) }

// AcceptURL is the link that accepts the invitation with secret.
func (s *inviteSetup) AcceptURL(secret string) string { return s.acceptURL(secret) }

// Interface guards
var (
	_ caddy.AdminRouter = (*adminAPI)(nil)
	_ caddy.Provisioner = (*adminAPI)(nil)
	_ adminapi.Invites  = (*inviteSetup)(nil)
)
