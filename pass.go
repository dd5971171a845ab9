package caddycognito

import (
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-cognito/caddy-cognito/internal/assertion"
	"github.com/caddy-cognito/caddy-cognito/internal/identity"
	"github.com/caddy-cognito/caddy-cognito/internal/urlpolicy"
)

// passIdentity is the one place where every handler of the plugin ends once
// it knows the caller (bearer: a verified token, mapped when asked; login:
// a live session): the identity becomes the {http.auth.user.*}
// placeholders (first, so that the access log names a refused caller too),
// the handler's requirements are checked (refuse answers the first unmet
// one, with its client-safe reason and the scopes to advertise), and the
// request goes on with the identity headers, replaced, never appended to.
// With a signer (the handler's `assertion` option) the same identity also
// goes as a signed token in {prefix}Assertion, for the request's site.
// Client-sent identity headers, that one included, were stripped when the
// handler began, from this very header map and with these headers: the
// identity headers are set without deleting anything (SetStripped), so a
// new caller must strip first too.
func passIdentity(w http.ResponseWriter, r *http.Request, repl *caddy.Replacer, next caddyhttp.Handler, id *identity.Identity,
	reqs []Requirement, headers identity.Headers, vals *identity.HeaderValues, signer *assertion.Signer,
	refuse func(reason, scope string) error) error {
	slots := setPlaceholders(r, repl, id)
	if reason, scope := unmet(reqs, id); reason != "" {
		return refuse(reason, scope)
	}
	token, err := signedAssertion(r, signer, id)
	if err != nil {
		return err
	}
	headers.SetStripped(r.Header, vals, token, slots)
	return next.ServeHTTP(w, r)
}

// signedAssertion is the {prefix}Assertion value for id on the request's
// site (the forwarded one, from trusted proxies only), or "" without a
// signer. It fails closed: an upstream that relies on the assertion must
// never see a request without one.
func signedAssertion(r *http.Request, signer *assertion.Signer, id *identity.Identity) (string, error) {
	if signer == nil {
		return "", nil
	}
	https, host := urlpolicy.RequestSite(r, fromTrustedProxy)
	token, err := signer.Assertion(assertion.Site{HTTPS: https, Host: host}, id)
	if err != nil {
		return "", caddyhttp.Error(http.StatusInternalServerError, err)
	}
	return token, nil
}

// replacerOf is the request's Caddy replacer.
func replacerOf(r *http.Request) *caddy.Replacer {
	return r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
}
