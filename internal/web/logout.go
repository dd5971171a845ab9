package web

import (
	"crypto/subtle"
	"net/http"
	"net/url"

	"go.uber.org/zap"

	"github.com/caddy-cognito/caddy-cognito/internal/session"
)

// MaxFormBody bounds the body of the plugin's small forms (sign-out, accepting an invitation).
const MaxFormBody = 8 << 10

// serveLogout signs out. A GET only shows a confirmation page (a link or
// an image must not sign anyone out); the page's form POSTs back with a
// CSRF token tied to the session.
func (l *Flow) serveLogout(w http.ResponseWriter, r *http.Request) error {
	raw := session.CookieValue(r, l.SessionCookieName(r))
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		next := l.optionalNext(r.URL.Query().Get("next"))
		if raw == "" {
			return l.showSignedOut(w, r, next)
		}
		return l.confirmSignOut(w, r, raw, next)
	case http.MethodPost:
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		return l.ShowError(w, r, http.StatusMethodNotAllowed, "Sign out with the form on this page.")
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxFormBody)
	if err := r.ParseForm(); err != nil {
		return l.ShowError(w, r, http.StatusBadRequest, "The sign-out form could not be read.")
	}
	next := l.optionalNext(r.PostForm.Get("next"))
	if raw == "" {
		return l.showSignedOut(w, r, next)
	}
	if subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf")), []byte(csrfToken(raw))) != 1 {
		return l.showPage(w, r, http.StatusForbidden, "error", PageData{
			Title:   "Sign-out not confirmed",
			Message: "This sign-out request did not come from this site's sign-out page.",
			Links:   []PageLink{{Text: "Sign out", Href: l.pathPrefix + "logout"}},
		})
	}
	return l.signOut(w, r, next)
}

// confirmSignOut shows the sign-out page, whose form POSTs to logout with
// the CSRF token of session raw, then goes on to next.
func (l *Flow) confirmSignOut(w http.ResponseWriter, r *http.Request, raw, next string) error {
	return l.showPage(w, r, http.StatusOK, "logout", PageData{
		Title:   "Sign out",
		Message: "Do you want to sign out of this site?",
		Action:  l.pathPrefix + "logout", CSRF: csrfToken(raw), Next: next,
	})
}

// optionalNext validates a `next` that may be absent: "" stays "" (show
// the signed-out page), anything else becomes the policy's target.
func (l *Flow) optionalNext(v string) string {
	if v == "" {
		return ""
	}
	next, _ := l.returnTo.Resolve(v)
	return next
}

// signOut ends the browser's session here (if any), revokes its refresh
// token, and sends the browser through the provider's logout to
// logout/done, which then goes to next (or shows the signed-out page when
// next is "").
func (l *Flow) signOut(w http.ResponseWriter, r *http.Request, next string) error {
	// The provider of the session's pool signs the browser out there too;
	// without a session of ours (a multi-pool handler then knows no pool)
	// only here.
	pool := ""
	pr := l.providerFor("")
	if raw := session.CookieValue(r, l.SessionCookieName(r)); raw != "" {
		var rt string
		rt, pool = l.sessions.EndIn(r.Context(), raw)
		l.revoke(r.Context(), rt, pool)
		pr = l.providerFor(pool)
	}
	l.setCookie(w, r, SessionCookieBase, "", -1)
	l.setCookie(w, r, logoutCookieBase, l.sealCookie([]byte(next), adLogoutCookie), loginCookieMaxAge)
	done := l.pathPrefix + "logout/done"
	target := done
	if pr == nil {
		l.logger.Debug("signed out here only: no session of a pool of this handler")
	} else if client, err := pr.Get(r.Context()); err != nil {
		l.logger.Warn("signed out here only: the provider cannot be reached", zap.Error(err))
	} else if u := client.LogoutURL(l.requestOrigin(r) + done); u != "" {
		target = u
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, target, http.StatusSeeOther) //nolint:gosec // G710: logout/done or the configured provider's logout URL
	return nil
}

// serveLogoutDone is where the provider sends the browser back after
// signing out: on to the next kept by signOut, else a "signed out" page.
func (l *Flow) serveLogoutDone(w http.ResponseWriter, r *http.Request) error {
	next := ""
	if c, err := r.Cookie(CookieName(logoutCookieBase, l.secure(r))); err == nil {
		if b, ok := l.openCookie(c.Value, adLogoutCookie); ok {
			next = l.optionalNext(string(b))
		}
		l.setCookie(w, r, logoutCookieBase, "", -1)
	}
	if next == "" {
		return l.showSignedOut(w, r, "")
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, next, http.StatusSeeOther) //nolint:gosec // G710: next passed the ReturnPolicy (same-site path or an allowed origin)
	return nil
}

func (l *Flow) showSignedOut(w http.ResponseWriter, r *http.Request, next string) error {
	if next == "" {
		next, _ = l.returnTo.Resolve("")
	}
	return l.showPage(w, r, http.StatusOK, "signed_out", PageData{
		Title:   "Signed out",
		Message: "You are signed out.",
		Links:   []PageLink{{Text: "Sign in again", Href: l.pathPrefix + "login?next=" + url.QueryEscape(next)}},
	})
}
