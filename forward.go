package caddycognito

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// tokenForwarder adds the session's token (forward_token) to the request
// once the identity has passed every requirement, just before the next
// handler: a refused request never carries it. (Caddy's access log
// records a copy of the request taken before any handler ran, so the
// token is not in it whatever its header's name.)
type tokenForwarder struct {
	next   caddyhttp.Handler
	header string
	token  string
}

func (f tokenForwarder) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	if strings.EqualFold(f.header, "Authorization") {
		r.Header.Set(f.header, "Bearer "+f.token)
	} else {
		r.Header.Set(f.header, f.token)
	}
	return f.next.ServeHTTP(w, r)
}

// validateForwardHeader accepts a header name of letters, digits and -
// that is not one whose meaning to HTTP or Caddy a token must not take.
func validateForwardHeader(name string) error {
	if name == "" || strings.Trim(name, "-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") != "" {
		return fmt.Errorf("forward_token header %q must be a header name of letters, digits and -", name)
	}
	switch strings.ToLower(name) {
	case "host", "cookie", "connection", "content-length", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization":
		return fmt.Errorf("forward_token header %q is reserved", name)
	}
	return nil
}
