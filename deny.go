package caddycognito

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-cognito/caddy-cognito/internal/metrics"
	"github.com/caddy-cognito/caddy-cognito/internal/web"
)

// denial describes a refused request. reason is client-safe: it never
// holds a token, a key or a secret.
type denial struct {
	status  int
	code    string // OAuth error code, RFC 6750 §3.1; empty when no token was offered
	reason  string
	scope   string // scopes to advertise with insufficient_scope
	noToken bool
	why     metrics.Reason // what requests_total counts
}

// deny answers a refused bearer request: the challenge header, the reason
// in placeholders and a debug log line, then either the server's
// handle_errors routes or a short JSON body.
func (b *Bearer) deny(w http.ResponseWriter, r *http.Request, repl *caddy.Replacer, d denial) error {
	b.requests.Count(d.why)
	if d.noToken {
		d.code, d.reason = "", "bearer token required"
	}
	if d.status == http.StatusUnauthorized || d.status == http.StatusForbidden {
		w.Header().Set("WWW-Authenticate", challenge(b.Realm, d))
	}
	code := d.code
	if code == "" {
		code = "unauthorized"
	}
	repl.Set(placeholderErrorCode, code)
	repl.Set(placeholderErrorDescr, d.reason)
	b.logger.Debug("request refused",
		zap.Int("status", d.status),
		zap.String("error", code),
		zap.String("reason", d.reason),
		zap.String("remote_ip", r.RemoteAddr),
		zap.String("uri", r.RequestURI))

	if hasErrorRoutes(r) {
		return caddyhttp.Error(d.status, errors.New(d.reason))
	}
	return web.WriteJSON(w, d.status, map[string]string{"error": code, "error_description": d.reason})
}

// challenge builds the WWW-Authenticate value (RFC 6750 §3). reason and
// scope are our own strings, but quotes are escaped all the same.
func challenge(realm string, d denial) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Bearer realm=%s", quote(realm))
	if d.code != "" {
		fmt.Fprintf(&b, ", error=%s, error_description=%s", quote(d.code), quote(d.reason))
	}
	if d.scope != "" {
		fmt.Fprintf(&b, ", scope=%s", quote(d.scope))
	}
	return b.String()
}

func quote(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '"' || r == '\\' {
			return -1
		}
		return r
	}, s)
	return `"` + s + `"`
}

// hasErrorRoutes reports whether the server has handle_errors routes that
// should render the refusal instead of our JSON body.
func hasErrorRoutes(r *http.Request) bool {
	srv, ok := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	return ok && srv != nil && srv.Errors != nil && len(srv.Errors.Routes) > 0
}
