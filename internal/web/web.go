// Package web is browser sign-in's pages and flows: the login, callback,
// logout and /me endpoints, the cookies that carry a sign-in between them,
// the HTML pages and their form tokens.
package web

import (
	"context"
	"net/http"

	"go.uber.org/zap"

	"github.com/caddy-cognito/caddy-cognito/internal/admission"
	"github.com/caddy-cognito/caddy-cognito/internal/provider"
	"github.com/caddy-cognito/caddy-cognito/internal/seal"
	"github.com/caddy-cognito/caddy-cognito/internal/session"
	"github.com/caddy-cognito/caddy-cognito/internal/urlpolicy"
)

// Store is what the flows need of the identity store besides sessions.
type Store interface {
	TouchLogin(ctx context.Context, userID string) error
}

// Config is one cognito_login handler's flows, as its Provision built them.
type Config struct {
	PathPrefix      string // where the endpoints live, with a trailing /
	RedirectURI     string // the configured callback URL, or "" to build it
	Unauthenticated string // auto, redirect or status
	ReturnTo        urlpolicy.ReturnPolicy
	Sessions        *session.Manager
	Store           Store
	Sealer          *seal.Sealer // seals the sign-in cookies
	Provider        *provider.Resolver
	// Choices, when set, are the pools a handler with several offers at
	// sign-in (Provider is then unused): `login` shows a chooser unless
	// `?pool=` names one, and each sign-in keeps its pool.
	Choices []Choice
	Pages   *Pages
	Admit   *admission.Admitter
	// TrustedProxy says whether a request comes from one of the server's
	// trusted_proxies, whose X-Forwarded-* headers count.
	TrustedProxy urlpolicy.TrustedProxy
	Logger       *zap.Logger
}

// Choice is one pool a multi-pool handler offers: its name (`?pool=`),
// its label on the chooser and its provider.
type Choice struct {
	Name, Label string
	Provider    *provider.Resolver
}

// Flow serves one handler's sign-in endpoints and pages.
type Flow struct {
	pathPrefix, redirectURIConf, unauthenticatedMode string

	returnTo     urlpolicy.ReturnPolicy
	sessions     *session.Manager
	store        Store
	sealer       *seal.Sealer
	provider     *provider.Resolver
	choices      []Choice // nil: one pool, provider's
	pages        *Pages
	admit        *admission.Admitter
	trustedProxy urlpolicy.TrustedProxy
	logger       *zap.Logger
}

// New builds the flows.
func New(c Config) *Flow {
	return &Flow{
		pathPrefix: c.PathPrefix, redirectURIConf: c.RedirectURI, unauthenticatedMode: c.Unauthenticated,
		returnTo: c.ReturnTo, sessions: c.Sessions, store: c.Store, sealer: c.Sealer, provider: c.Provider, choices: c.Choices,
		pages: c.Pages, admit: c.Admit, trustedProxy: c.TrustedProxy, logger: c.Logger,
	}
}

// Endpoint returns the handler of the endpoint name (the path after the
// prefix: login, callback, logout, logout/done, me), or nil.
func (l *Flow) Endpoint(name string) func(http.ResponseWriter, *http.Request) error {
	switch name {
	case "login":
		return l.serveLogin
	case "callback":
		return l.serveCallback
	case "logout":
		return l.serveLogout
	case "logout/done":
		return l.serveLogoutDone
	case "me":
		return l.serveMe
	}
	return nil
}

// providerFor returns the provider of the pool called name: the one pool's
// when the handler has one (whatever the name: sessions of other pools
// never reach here, see session.Manager.EndIn), or nil for a name a
// multi-pool handler does not offer.
func (l *Flow) providerFor(name string) *provider.Resolver {
	if l.choices == nil {
		return l.provider
	}
	for _, c := range l.choices {
		if c.Name == name {
			return c.Provider
		}
	}
	return nil
}

// Session returns the request's live session (session.ErrNoSession when
// there is none).
func (l *Flow) Session(r *http.Request) (*session.Live, error) {
	return l.sessions.Current(r, l.SessionCookieName(r))
}
