package web

import (
	"net/http"
	"net/url"
	"strings"

	"go.uber.org/zap"
)

// The forward-auth endpoint ({prefix}verify) answers another proxy
// (Caddy's forward_auth, nginx auth_request, Traefik forwardAuth) about the
// request it holds: the session cookie comes with the headers it copies,
// the original method and URL in forwarding headers, which count only
// from one of the server's trusted_proxies (anyone else could name any
// URL to be sent back to).

// forwardedURIHeaders name the original request URI, as each proxy sends
// it: Caddy and Traefik X-Forwarded-Uri, nginx (by convention, set in its
// config) X-Original-URL or X-Original-URI. A proxy sets its own and may
// pass the others on from the client (nginx passes what it is not told to
// set; Caddy's forward_auth passes X-Original-*), so no one of them can be
// trusted over the others: when they disagree, none is (forwarded).
var forwardedURIHeaders = []string{"X-Forwarded-Uri", "X-Original-URL", "X-Original-URI"}

// forwarded returns the method of the request a forward-auth proxy asks
// about and where to send the browser back after sign-in: the original
// URI (relative when it is on this site as the browser sees it, an
// absolute URL otherwise, which the return policy accepts only from its
// allowed origins). From an untrusted peer, or when the forwarded URIs
// (every value of every header of forwardedURIHeaders) do not all name
// the same one, the URI is unknown: "" (the policy's default), so a
// client cannot choose its own return target by adding a header the
// proxy passes through.
func (l *Flow) forwarded(r *http.Request) (method, next string) {
	method = r.Method
	if l.trustedProxy == nil || !l.trustedProxy(r) {
		return method, ""
	}
	if m := r.Header.Get("X-Forwarded-Method"); validMethod(m) {
		method = m
	}
	seen := false
	for _, h := range forwardedURIHeaders {
		for _, v := range r.Header.Values(h) {
			if v == "" {
				continue
			}
			n := l.forwardedNext(r, v)
			if seen && n != next {
				var present []string // names only: the values are the client's to choose
				for _, h := range forwardedURIHeaders {
					if len(r.Header.Values(h)) > 0 {
						present = append(present, h)
					}
				}
				l.logger.Warn("forward auth: the original-URI headers disagree, so none is trusted and sign-in returns to the default; "+
					"make the proxy set each of them", zap.Strings("headers", present))
				return method, ""
			}
			next, seen = n, true
		}
	}
	return method, next
}

// forwardedNext is where a forwarded URI sends the browser back: a path
// as it is, an absolute URL on this site's origin as its path, another
// absolute URL as it is (for the return policy to judge), anything else
// "".
func (l *Flow) forwardedNext(r *http.Request, uri string) string {
	if strings.HasPrefix(uri, "/") {
		return uri
	}
	u, err := url.Parse(uri)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	if origin := u.Scheme + "://" + u.Host; strings.EqualFold(origin, l.requestOrigin(r)) {
		return u.RequestURI()
	}
	return uri
}

// validMethod accepts an HTTP method token of a sane length.
func validMethod(m string) bool {
	if m == "" || len(m) > 16 {
		return false
	}
	for i := 0; i < len(m); i++ {
		if c := m[i]; c < 'A' || c > 'Z' {
			return false
		}
	}
	return true
}

// VerifyAskToSignIn answers a forward-auth request without a session: a
// 302 to sign in, coming back to the original URL, for a browser
// navigation, else 401 JSON; `?unauthenticated=status` (for nginx, whose
// auth_request accepts only 2xx, 401 and 403) or `=redirect` overrides the
// handler's mode for this use of the endpoint. Either way X-Login-URL
// names the sign-in URL, for nginx's `error_page 401` to redirect to.
func (l *Flow) VerifyAskToSignIn(w http.ResponseWriter, r *http.Request) error {
	method, next := l.forwarded(r)
	mode := l.unauthenticatedMode
	switch m := r.URL.Query().Get("unauthenticated"); m {
	case "auto", "redirect", "status":
		mode = m
	}
	return l.askToSignIn(w, r, method, next, mode, true)
}

// VerifyForbidden answers a forward-auth request whose user an unmet
// requirement refuses: 403 (a page for a navigation, JSON otherwise).
func (l *Flow) VerifyForbidden(w http.ResponseWriter, r *http.Request, message string) error {
	method, _ := l.forwarded(r)
	return l.forbidden(w, r, method, message)
}
