package caddycognito

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-cognito/caddy-cognito/internal/admission"
	"github.com/caddy-cognito/caddy-cognito/internal/identity"
	"github.com/caddy-cognito/caddy-cognito/internal/metrics"
	"github.com/caddy-cognito/caddy-cognito/internal/session"
	"github.com/caddy-cognito/caddy-cognito/internal/urlpolicy"
	"github.com/caddy-cognito/caddy-cognito/internal/web"
	"github.com/caddy-cognito/caddy-cognito/invitations"
	"github.com/caddy-cognito/caddy-cognito/userstore"
)

func init() {
	caddy.RegisterModule(InvitationsHandler{})
}

// InvitationsHandler serves invitation links,
// `{path_prefix}{secret}/accept` (the prefix is set in the global
// option's `invitations` block). A GET only shows a page, because mail
// scanners follow links: before sign-in it names the site and the invited
// email and offers "Sign in to accept", which goes through `cognito_login`
// with the invitation carried along (`admit invited` admits a first-time
// identity with it). A signed-in user accepts with a POST from that page
// (CSRF-protected). Other requests pass through.
//
// Before sign-in, unknown, expired, used and revoked links all get the
// same page; after sign-in the page says which it was.
type InvitationsHandler struct {
	// Pool names the pool (from the global `cognito` option) of this
	// site's `cognito_login`: only its browser sessions may accept an
	// invitation here. Default: the only configured pool.
	Pool string `json:"pool,omitempty"`

	// Pools lists several pools instead (set Pool or Pools, not both),
	// for a site whose `cognito_login` offers the same pools: a session
	// signed in with any of them may accept an invitation here.
	Pools []string `json:"pools,omitempty"`

	// LoginPrefix is `cognito_login`'s path_prefix on this site, where
	// "Sign in to accept" goes. Default: `/auth/`.
	LoginPrefix string `json:"login_prefix,omitempty"`

	// DefaultReturn is where the browser goes after accepting: a
	// same-site path. Default: `/`.
	DefaultReturn string `json:"default_return,omitempty"`

	setup    *inviteSetup
	owners   []sessionOwner // whose sessions count: each pool's issuer and login client
	store    func() (*userstore.Store, error)
	pages    *web.Pages
	returnTo urlpolicy.ReturnPolicy
	requests *metrics.Requests
	logger   *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (InvitationsHandler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.cognito_invitations",
		New: func() caddy.Module { return new(InvitationsHandler) },
	}
}

// Provision finds the invitations configuration of the cognito app.
func (i *InvitationsHandler) Provision(ctx caddy.Context) error {
	i.logger = ctx.Logger()
	i.requests = metrics.Shared().Requests("invitations")
	if i.LoginPrefix == "" {
		i.LoginPrefix = defaultLoginPrefix
	}
	if !strings.HasSuffix(i.LoginPrefix, "/") {
		i.LoginPrefix += "/"
	}
	app, err := appFromContext(ctx)
	if err != nil {
		return err
	}
	if i.setup, err = app.invitationsSetup(); err != nil {
		return err
	}
	pools, err := app.handlerPools(i.Pool, i.Pools)
	if err != nil {
		return err
	}
	for _, p := range pools {
		client := p.loginClientID()
		if client == "" {
			return fmt.Errorf("pool %q: cognito_invitations needs the client_id its cognito_login signs in with", p.name)
		}
		i.owners = append(i.owners, sessionOwner{issuer: p.issuer, clientID: client})
	}
	i.store = app.UserStore
	i.returnTo = urlpolicy.ReturnPolicy{Default: i.DefaultReturn}
	i.pages, err = web.LoadPages(nil)
	return err
}

// Validate checks the handler's settings.
func (i *InvitationsHandler) Validate() error {
	if !strings.HasPrefix(i.LoginPrefix, "/") {
		return fmt.Errorf("login_prefix %q must be an absolute path", i.LoginPrefix)
	}
	return i.returnTo.Validate()
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (i *InvitationsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	rest, ok := strings.CutPrefix(r.URL.Path, i.setup.cfg.PathPrefix)
	secret, ok2 := strings.CutSuffix(rest, "/accept")
	if !ok || !ok2 || secret == "" || strings.Contains(secret, "/") {
		return next.ServeHTTP(w, r)
	}
	store, err := i.store()
	if err != nil {
		i.logger.Error("identity store unavailable", zap.Error(err))
		i.requests.Count(metrics.Unavailable)
		return i.page(w, r, http.StatusServiceUnavailable, web.PageData{Title: "Unavailable", Message: "Invitations are temporarily unavailable. Please try again shortly."})
	}
	svc := invitations.New(store, nil)
	signedIn, sessionID := i.session(r.Context(), r, store)
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		return i.show(w, r, svc, secret, signedIn, sessionID)
	case http.MethodPost:
		return i.accept(w, r, svc, secret, signedIn, sessionID)
	}
	w.Header().Set("Allow", "GET, HEAD, POST")
	i.requests.Count(metrics.InvalidRequest)
	return i.page(w, r, http.StatusMethodNotAllowed, web.PageData{Title: "Not allowed", Message: "Use the link from your invitation."})
}

// session returns the signed-in session of the request (read from the
// store, not cognito_login's cache: these pages are rare), or nil. Only a
// session of one of the site's pools, with its app client, counts
// (session.Owns): a cookie carried from another pool's site must not
// accept an invitation. On an
// https site only the __Host- cookie counts, as in cognito_login: a
// sibling subdomain cannot plant it. base_url says whether the site is
// https, as redirect_uri does for cognito_login (urlpolicy.SiteIsHTTPS).
func (i *InvitationsHandler) session(ctx context.Context, r *http.Request, store *userstore.Store) (*userstore.Session, string) {
	secure := urlpolicy.SiteIsHTTPS(i.setup.cfg.BaseURL, r, fromTrustedProxy)
	if raw := session.CookieValue(r, web.CookieName(web.SessionCookieBase, secure)); raw != "" {
		if s, err := store.GetSession(ctx, session.HashID(raw)); err == nil && i.owns(s) {
			return s, raw
		}
	}
	return nil, ""
}

// sessionOwner is a pool's issuer with the app client cognito_login signs
// in with there.
type sessionOwner struct{ issuer, clientID string }

// owns reports whether s was signed in with one of the handler's pools.
func (i *InvitationsHandler) owns(s *userstore.Session) bool {
	for _, o := range i.owners {
		if session.Owns(s, o.issuer, o.clientID) {
			return true
		}
	}
	return false
}

// show answers a GET: it never changes anything.
func (i *InvitationsHandler) show(w http.ResponseWriter, r *http.Request, svc *invitations.Service, secret string, s *userstore.Session, sid string) error {
	inv, err := svc.Lookup(r.Context(), secret)
	if err != nil && !errors.Is(err, invitations.ErrUnknown) {
		return i.unavailable(w, r, err)
	}
	if s == nil {
		if inv == nil || inv.EffectiveStatus(time.Now()) != invitations.Pending {
			i.requests.Count(metrics.InvalidInvitation)
			return i.page(w, r, http.StatusNotFound, web.PageData{Title: "Invitation", Message: i.setup.messages["invalid"]})
		}
		i.requests.Count(metrics.Allowed)
		return i.page(w, r, http.StatusOK, web.PageData{
			Title:   "You are invited to " + i.setup.siteName,
			Message: "This invitation is for " + inv.Email + ". Sign in to accept it.",
			Links:   []web.PageLink{{Text: "Sign in to accept", Href: i.signInURL(r, secret)}},
		})
	}
	if inv != nil && inv.Status == invitations.Accepted && inv.AcceptedBy == s.UserID {
		i.requests.Count(metrics.Allowed)
		return i.page(w, r, http.StatusOK, web.PageData{Title: "Invitation accepted", Message: i.setup.messages["accepted"],
			Links: []web.PageLink{{Text: "Continue", Href: i.returnTarget()}}})
	}
	if inv == nil {
		return i.refused(w, r, invitations.ErrUnknown)
	}
	if err := invitations.StatusError(inv.EffectiveStatus(time.Now())); err != nil {
		return i.refused(w, r, err)
	}
	i.requests.Count(metrics.Allowed)
	return i.page(w, r, http.StatusOK, web.PageData{
		Title:   "You are invited to " + i.setup.siteName,
		Message: "This invitation is for " + inv.Email + ".",
		Action:  r.URL.Path, CSRF: acceptCSRF(sid, secret), Button: "Accept the invitation",
	})
}

// accept answers the form's POST.
func (i *InvitationsHandler) accept(w http.ResponseWriter, r *http.Request, svc *invitations.Service, secret string, s *userstore.Session, sid string) error {
	if s == nil {
		// The target is the configured sign-in path on this site; the request
		// path only travels query-escaped in its next parameter.
		i.requests.Count(metrics.NoSession)
		http.Redirect(w, r, i.signInURL(r, secret), http.StatusSeeOther) //nolint:gosec // G710: see above
		return nil
	}
	r.Body = http.MaxBytesReader(w, r.Body, web.MaxFormBody)
	if err := r.ParseForm(); err != nil ||
		subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf")), []byte(acceptCSRF(sid, secret))) != 1 {
		i.requests.Count(metrics.InvalidRequest)
		return i.page(w, r, http.StatusForbidden, web.PageData{Title: "Not confirmed",
			Message: "This request did not come from the invitation page. Open the invitation link again."})
	}
	user, _, err := svc.Accept(r.Context(), secret, sessionInvitee(s), invitations.AcceptOptions{BindEmail: i.setup.cfg.BindEmail})
	if err != nil {
		return i.refused(w, r, err)
	}
	i.logger.Info("invitation accepted", zap.String("user", user.ID))
	i.requests.Count(metrics.Allowed)
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, i.returnTarget(), http.StatusSeeOther)
	return nil
}

func (i *InvitationsHandler) returnTarget() string {
	t, _ := i.returnTo.Resolve("")
	return t
}

// signInURL goes through cognito_login and back to this page, carrying
// the invitation so that `admit invited` can admit a first sign-in.
func (i *InvitationsHandler) signInURL(r *http.Request, secret string) string {
	return i.LoginPrefix + "login?next=" + url.QueryEscape(r.URL.Path) + "&invitation=" + url.QueryEscape(secret)
}

// refused shows why a signed-in user cannot accept.
func (i *InvitationsHandler) refused(w http.ResponseWriter, r *http.Request, err error) error {
	key, status := invitations.Refusal(err)
	if key == "" {
		return i.unavailable(w, r, err)
	}
	i.requests.Count(metrics.InvalidInvitation)
	return i.page(w, r, status, web.PageData{Title: "Invitation", Message: i.setup.messages[key]})
}

func (i *InvitationsHandler) unavailable(w http.ResponseWriter, r *http.Request, err error) error {
	i.logger.Error("invitation failed", zap.Error(err))
	i.requests.Count(metrics.Unavailable)
	return i.page(w, r, http.StatusServiceUnavailable, web.PageData{Title: "Unavailable", Message: "Invitations are temporarily unavailable. Please try again shortly."})
}

func (i *InvitationsHandler) page(w http.ResponseWriter, r *http.Request, status int, d web.PageData) error {
	return web.RenderPage(w, r, i.pages.Template("error"), status, d)
}

// acceptCSRF ties the accept form to the session and the invitation.
func acceptCSRF(sessionID, secret string) string {
	return web.FormToken("invitation", sessionID, secret)
}

// sessionInvitee is the identity of a signed-in session, for Accept.
func sessionInvitee(s *userstore.Session) invitations.Identity {
	id := invitations.Identity{Issuer: s.Issuer, Sub: s.Sub}
	var sc session.Claims
	if json.Unmarshal(s.IDTokenClaims, &sc) == nil {
		if c, err := identity.ParseIDClaims(sc.ID); err == nil {
			id = admission.Invitee(c)
		}
	}
	id.Issuer, id.Sub = s.Issuer, s.Sub
	return id
}

// Interface guards
var (
	_ caddy.Provisioner           = (*InvitationsHandler)(nil)
	_ caddy.Validator             = (*InvitationsHandler)(nil)
	_ caddyhttp.MiddlewareHandler = (*InvitationsHandler)(nil)
)
