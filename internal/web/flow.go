package web

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-cognito/caddy-cognito/internal/admission"
	"github.com/caddy-cognito/caddy-cognito/internal/identity"
	"github.com/caddy-cognito/caddy-cognito/internal/provider"
	"github.com/caddy-cognito/caddy-cognito/internal/session"
	"github.com/caddy-cognito/caddy-cognito/invitations"
)

// restartMark ends the state of a sign-in that is itself a restart, so a
// browser that never keeps our cookie gets a page instead of a loop.
const restartMark = ".r"

// serveLogin starts a sign-in: a login request (state, nonce, PKCE
// verifier, next) sealed into a short-lived cookie, and a redirect to the
// provider. `idp` picks a federated identity provider on Cognito;
// `force_logout=true` (to switch accounts) asks a signed-in browser to
// confirm signing out first: a GET never ends a session, since any site
// can send a browser here with a link.
func (l *Flow) serveLogin(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return l.ShowError(w, r, http.StatusMethodNotAllowed, "Sign-in starts with a GET request.")
	}
	q := r.URL.Query()
	next, _ := l.returnTo.Resolve(q.Get("next"))
	if q.Get("force_logout") == "true" {
		if raw := session.CookieValue(r, l.SessionCookieName(r)); raw != "" {
			return l.confirmSignOut(w, r, raw, l.pathPrefix+"login?next="+url.QueryEscape(next))
		}
	}
	pool := "" // a one-pool handler has nothing to choose and ignores ?pool=
	if l.choices != nil {
		if pool = q.Get("pool"); pool == "" {
			return l.showChooser(w, r, q, next)
		}
	}
	pr := l.providerFor(pool)
	if pr == nil {
		return l.showPage(w, r, http.StatusBadRequest, "error", PageData{
			Title:   "Unknown sign-in",
			Message: "This site offers no sign-in of that name.",
			Links:   []PageLink{{Text: "Choose how to sign in", Href: l.pathPrefix + "login?next=" + url.QueryEscape(next)}},
		})
	}
	client, err := pr.Get(r.Context())
	if err != nil {
		return l.ShowError(w, r, http.StatusServiceUnavailable, "The sign-in service cannot be reached. Please try again shortly.")
	}
	lr, err := provider.NewLoginRequest(next, l.redirectURI(r))
	if err != nil {
		return err
	}
	lr.Pool = pool
	if q.Get("attempt") == "2" {
		lr.State += restartMark
	}
	if inv := q.Get("invitation"); invitations.HashSecret(inv) != "" {
		lr.Invitation = inv
	}
	if err := l.saveLoginRequest(w, r, lr); err != nil {
		return err
	}
	extra := url.Values{}
	if idp := q.Get("idp"); idp != "" && validIdPName(idp) {
		extra.Set("identity_provider", idp)
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, client.AuthCodeURL(lr, extra), http.StatusFound) //nolint:gosec // G710: the configured provider's authorization endpoint; only idp (checked by validIdPName) comes from the request
	return nil
}

// showChooser shows one button per pool, each starting this sign-in (its
// next, idp and invitation kept) with that pool.
func (l *Flow) showChooser(w http.ResponseWriter, r *http.Request, q url.Values, next string) error {
	d := PageData{Title: "Sign in", Message: "Choose how to sign in."}
	for _, c := range l.choices {
		v := url.Values{"pool": {c.Name}, "next": {next}}
		for _, keep := range []string{"idp", "invitation", "attempt"} {
			if x := q.Get(keep); x != "" {
				v.Set(keep, x)
			}
		}
		d.Choices = append(d.Choices, PageLink{Text: c.Label, Href: l.pathPrefix + "login?" + v.Encode()})
	}
	w.Header().Set("Cache-Control", "no-store")
	return l.showPage(w, r, http.StatusOK, "choose", d)
}

// validIdPName accepts what Cognito allows as an identity provider name.
func validIdPName(s string) bool {
	if len(s) > 128 {
		return false
	}
	for _, c := range s {
		if c < 0x21 || c > 0x7e || c == '"' || c == '<' || c == '>' {
			return false
		}
	}
	return true
}

// serveCallback finishes a sign-in: state, code exchange, ID token checks,
// admission, a new session, and the redirect to the validated next.
func (l *Flow) serveCallback(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return l.ShowError(w, r, http.StatusMethodNotAllowed, "The sign-in callback takes a GET request.")
	}
	q := r.URL.Query()
	state := q.Get("state")
	lr, found := l.takeLoginRequest(w, r, state)
	if code := q.Get("error"); code != "" {
		l.logger.Info("sign-in ended by the provider", zap.String("error", provider.SafeErrorCode(code)))
		return l.ShowError(w, r, http.StatusBadRequest, providerErrorMessage(code))
	}
	pr := l.providerFor(lr.Pool)
	if !found || pr == nil {
		// Back button, a stale tab, a second click (or a pool no longer
		// offered): start again.
		return l.restart(w, r, lr.Next, lr.Pool, state)
	}
	code := q.Get("code")
	if code == "" || len(code) > 2048 {
		return l.ShowError(w, r, http.StatusBadRequest, "The sign-in answer carried no authorization code.")
	}
	client, err := pr.Get(r.Context())
	if err != nil {
		return l.ShowError(w, r, http.StatusServiceUnavailable, "The sign-in service cannot be reached. Please try again shortly.")
	}
	ts, err := client.Exchange(r.Context(), lr, code)
	if errors.Is(err, provider.ErrInvalidGrant) {
		return l.restart(w, r, lr.Next, lr.Pool, state)
	}
	if err != nil {
		l.logger.Warn("sign-in refused: token exchange or ID token check failed", zap.Error(err))
		return l.ShowError(w, r, http.StatusBadGateway, "The sign-in could not be verified. Please try again.")
	}
	idc, err := identity.ParseIDClaims(ts.IDClaims)
	if err != nil {
		l.logger.Warn("sign-in refused: unusable ID token claims", zap.Error(err))
		return l.ShowError(w, r, http.StatusBadGateway, "The sign-in could not be verified. Please try again.")
	}
	user, err := l.admit.Admit(r.Context(), idc, lr.Invitation)
	var refused *admission.Refusal
	switch {
	case errors.As(err, &refused):
		l.logger.Info("sign-in refused", zap.String("sub", idc.Subject), zap.String("reason", refused.Reason))
		return l.showPage(w, r, http.StatusForbidden, "refused", PageData{Title: "Access denied", Message: refused.Message})
	case err != nil:
		l.logger.Error("sign-in failed: identity store", zap.Error(err))
		return l.ShowError(w, r, http.StatusServiceUnavailable, "Sign-in is temporarily unavailable. Please try again shortly.")
	}
	// A new session id at every sign-in; any session the browser had ends.
	if old := session.CookieValue(r, l.SessionCookieName(r)); old != "" {
		rt, pool := l.sessions.EndIn(r.Context(), old)
		l.revoke(r.Context(), rt, pool)
	}
	id, err := l.sessions.Create(r.Context(), r, user, ts, l.sessions.ScopeOf(r.Context(), ts), idc)
	if err != nil {
		l.logger.Error("sign-in failed: cannot store the session", zap.Error(err))
		return l.ShowError(w, r, http.StatusServiceUnavailable, "Sign-in is temporarily unavailable. Please try again shortly.")
	}
	if err := l.store.TouchLogin(r.Context(), user.ID); err != nil {
		l.logger.Warn("could not record the login", zap.Error(err))
	}
	l.logger.Info("signed in", zap.String("user", user.ID), zap.String("sub", idc.Subject))
	l.setCookie(w, r, SessionCookieBase, id, 0)
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, lr.Next, http.StatusSeeOther)
	return nil
}

// restart sends the browser to sign in again, keeping next (and the pool
// chosen, if it is still offered). A restart of a restart means the
// browser is not keeping our cookie: say so.
func (l *Flow) restart(w http.ResponseWriter, r *http.Request, next, pool, state string) error {
	next, _ = l.returnTo.Resolve(next)
	again := "next=" + url.QueryEscape(next)
	if pool != "" && l.choices != nil && l.providerFor(pool) != nil {
		again += "&pool=" + url.QueryEscape(pool)
	}
	if strings.HasSuffix(state, restartMark) {
		return l.showPage(w, r, http.StatusBadRequest, "error", PageData{
			Title:   "Sign-in could not be completed",
			Message: "Your browser did not keep this site's sign-in cookie. Allow cookies for this site and try again.",
			Links:   []PageLink{{Text: "Try again", Href: l.pathPrefix + "login?" + again}},
		})
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, l.pathPrefix+"login?attempt=2&"+again, http.StatusFound)
	return nil
}

// providerErrorMessage explains an `error=` the provider sent back. Only
// known codes are described; the provider's description is not shown (it
// is attacker-controllable through the URL).
func providerErrorMessage(code string) string {
	switch code {
	case "access_denied":
		return "Sign-in was cancelled or refused by the sign-in service."
	case "invalid_scope", "unauthorized_client", "unsupported_response_type", "invalid_request":
		return "This site's sign-in is misconfigured (the sign-in service answered " + code + "). Please tell the site's administrator."
	case "server_error", "temporarily_unavailable":
		return "The sign-in service had a problem. Please try again shortly."
	}
	return "Sign-in did not complete."
}

// serveMe answers the signed-in user's profile as JSON.
func (l *Flow) serveMe(w http.ResponseWriter, r *http.Request) error {
	s, err := l.sessions.Current(r, l.SessionCookieName(r))
	switch {
	case errors.Is(err, session.ErrNoSession):
		return WriteJSON(w, http.StatusUnauthorized, map[string]string{
			"error": "unauthenticated", "error_description": "sign-in required", "login_url": l.pathPrefix + "login",
		})
	case err != nil:
		l.logger.Error("session check failed", zap.Error(err))
		return WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "temporarily_unavailable"})
	}
	id, user := s.Identity(), s.User()
	// The identity section shows what the provider says, verified or not,
	// beside the flag: this is the user's own profile, not a header.
	var idp, email string
	var emailVerified bool
	if c, err := identity.ParseIDClaims(s.IDClaims()); err == nil {
		idp, email, emailVerified = c.Provider(), c.Email, c.EmailVerified()
	}
	roles := user.Roles
	if roles == nil {
		roles = []string{}
	}
	groups := id.Groups
	if groups == nil {
		groups = []string{}
	}
	return WriteJSON(w, http.StatusOK, map[string]any{
		"user": map[string]any{
			"id": user.ID, "username": user.Username, "email": user.Email,
			"given_name": user.GivenName, "family_name": user.FamilyName, "roles": roles,
		},
		"identity": map[string]any{
			"issuer": id.Issuer, "sub": id.Subject, "username": id.Username, "email": email,
			"email_verified": emailVerified, "groups": groups, "provider": idp,
		},
		"session": map[string]any{
			"created_at": s.CreatedAt(), "idle_expires_at": s.IdleExpiresAt(), "absolute_expires_at": s.AbsoluteExpiresAt(),
		},
	})
}

// WriteJSON answers with v as JSON, never cached: the one JSON writer of
// the plugin's pages and refusals.
func WriteJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

// AskToSignIn answers a request without a session: a redirect to
// sign in for a browser navigation, 401 JSON for anything else.
func (l *Flow) AskToSignIn(w http.ResponseWriter, r *http.Request) error {
	return l.askToSignIn(w, r, r.Method, r.URL.RequestURI(), l.unauthenticatedMode, false)
}

// askToSignIn is AskToSignIn for a request made with method, to be sent
// back to next (checked by the return policy) after sign-in, answered as
// mode (auto, redirect or status) says; loginHeader also names the sign-in
// URL in X-Login-URL (for a proxy that turns a 401 into its own redirect).
func (l *Flow) askToSignIn(w http.ResponseWriter, r *http.Request, method, next, mode string, loginHeader bool) error {
	next, _ = l.returnTo.Resolve(next)
	loginURL := l.pathPrefix + "login?next=" + url.QueryEscape(next)
	if loginHeader {
		w.Header().Set("X-Login-URL", loginURL)
	}
	if wantsRedirect(r, method, mode) {
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, loginURL, http.StatusFound)
		return nil
	}
	return WriteJSON(w, http.StatusUnauthorized, map[string]string{
		"error": "unauthenticated", "error_description": "sign-in required", "login_url": loginURL,
	})
}

// wantsRedirect tells a browser navigation (made with method) from an API
// or XHR request, in mode auto; redirect and status decide alone.
func wantsRedirect(r *http.Request, method, mode string) bool {
	switch mode {
	case "redirect":
		return true
	case "status":
		return false
	}
	if method != http.MethodGet && method != http.MethodHead {
		return false
	}
	switch r.Header.Get("Sec-Fetch-Mode") {
	case "", "navigate":
	default: // cors, no-cors, same-origin, websocket: a script asked
		return false
	}
	if strings.EqualFold(r.Header.Get("X-Requested-With"), "XMLHttpRequest") {
		return false
	}
	accept := r.Header.Get("Accept")
	return !strings.Contains(accept, "application/json") || strings.Contains(accept, "text/html")
}

// revoke revokes a refresh token at the provider of pool (the session's),
// best effort and briefly: the session is already gone, a failure is for
// the log.
func (l *Flow) revoke(ctx context.Context, refreshToken, pool string) {
	pr := l.providerFor(pool)
	if refreshToken == "" || pr == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), revokeTimeout)
	defer cancel()
	client, err := pr.Get(ctx)
	if err == nil {
		err = client.Revoke(ctx, refreshToken)
	}
	if err != nil {
		l.logger.Warn("could not revoke the refresh token", zap.Error(err))
	}
}

// revokeTimeout bounds how long signing out waits for the provider.
const revokeTimeout = 5 * time.Second
