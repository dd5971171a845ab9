package caddycognito

import (
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-cognito/caddy-cognito/internal/identity"
)

// passIdentity is the one place where every handler of the plugin ends once
// it knows the caller (bearer: a verified token, mapped when asked; login:
// a live session): the identity becomes the {http.auth.user.*}
// placeholders (first, so that the access log names a refused caller too),
// the handler's requirements are checked (refuse answers the first unmet
// one, with its client-safe reason and the scopes to advertise), and the
// request goes on with the identity headers, replaced, never appended to.
// Client-sent identity headers were stripped when the handler began.
func passIdentity(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, id *identity.Identity,
	reqs []Requirement, headers identity.Headers, vals *identity.HeaderValues, refuse func(reason, scope string) error) error {
	setPlaceholders(r, replacerOf(r), id)
	if reason, scope := unmet(reqs, id); reason != "" {
		return refuse(reason, scope)
	}
	headers.SetValues(r.Header, vals)
	return next.ServeHTTP(w, r)
}

// replacerOf is the request's Caddy replacer.
func replacerOf(r *http.Request) *caddy.Replacer {
	return r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
}
