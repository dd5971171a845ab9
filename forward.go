package caddycognito

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// tokenForwarder hands the next handler a copy of the request that also
// carries the session's token (forward_token). The copy has its own
// header map: the request Caddy's access log records stays as the client
// sent it, so the token is not in the log whatever its header's name.
type tokenForwarder struct {
	next   caddyhttp.Handler
	header string
	token  string
}

func (f tokenForwarder) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	fr := r.WithContext(r.Context())
	fr.Header = r.Header.Clone()
	if strings.EqualFold(f.header, "Authorization") {
		fr.Header.Set(f.header, "Bearer "+f.token)
	} else {
		fr.Header.Set(f.header, f.token)
	}
	return f.next.ServeHTTP(w, fr)
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
