// Package urlpolicy holds the plugin's rules for URLs: which hosts count as
// loopback, which transports are trusted, which configured URLs are
// acceptable, whether a site is https, and where a browser may be sent back.
package urlpolicy

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// IsLoopbackHost reports whether host (as url.URL.Hostname returns it: no
// port, no brackets) is certain to name the local machine for whoever
// resolves it: a loopback IP address (127.0.0.0/8, ::1, and IPv4-mapped
// forms of them) or "localhost" in any letter case.
//
// It is the one loopback rule of the plugin. It decides where plain http
// is allowed (issuers, key sets, endpoints, base URLs, return origins) and
// where an SMTP server may be reached without TLS, so a wrong "yes" sends
// tokens, keys or mail passwords in the clear to another machine. It
// therefore answers yes only for names that resolve to loopback everywhere:
//
//   - "localhost" compares case-insensitively because DNS names do
//     (RFC 4343), and /etc/hosts lookups (glibc, Go's resolver) fold case.
//   - "*.localhost" is refused, although RFC 6761 §6.3 reserves it for
//     loopback: the RFC only says resolvers SHOULD answer so, and Go's
//     resolver, glibc without nss-myhostname, and some browsers send such a
//     name to DNS, where a search domain can turn "smtp.localhost" into
//     "smtp.localhost.corp.example". Write "localhost" or 127.0.0.1 instead.
//   - "localhost." (trailing dot), short forms such as "127.1", and IPv6
//     addresses with a zone are refused: nobody needs them, and each is
//     read differently by some parser.
func IsLoopbackHost(host string) bool {
	if isASCIILocalhost(host) {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// CheckTransport is the transport rule: https, and plain http only to a
// loopback host (local stand-ins such as cognito-local, local relays).
func CheckTransport(u *url.URL) error {
	switch u.Scheme { // url.Parse has lower-cased it
	case "https":
		return nil
	case "http":
		if IsLoopbackHost(u.Hostname()) {
			return nil
		}
		return errors.New("must use https (plain http is allowed only on a loopback host)")
	default:
		return errors.New("must be an https URL")
	}
}

// CheckTrustedURL refuses URLs that keys or identities must not come from
// (issuer, jwks_url, redirect_uri, a JWKS redirect): it wants an absolute
// URL without credentials, query or fragment that obeys CheckTransport.
// field names the setting in the error.
func CheckTrustedURL(field, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%s %q is not an absolute URL without credentials, query or fragment", field, raw)
	}
	if err := CheckTransport(u); err != nil {
		return fmt.Errorf("%s %q %w", field, raw, err)
	}
	return nil
}

// CheckEndpointURL accepts an absolute URL without credentials that obeys
// CheckTransport. Unlike CheckTrustedURL it allows a query: an
// authorization server's discovered endpoints may carry one.
func CheckEndpointURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil {
		return errors.New("not an absolute URL without credentials")
	}
	return CheckTransport(u)
}

// ErrNotBaseURL is ParseBaseURL's answer for a value that is not
// scheme://host[:port]; callers word it for their setting.
var ErrNotBaseURL = errors.New("not a base URL (scheme://host[:port] only)")

// ParseBaseURL checks a configured site or server address (a hosted-UI
// domain, the invitations base_url): scheme://host[:port] with at most a
// trailing '/', and no credentials, path, query or fragment, not even an
// empty '?' or '#' (base URLs are prefixes of links, where either would
// swallow the path). A value of the wrong shape is ErrNotBaseURL; one that
// breaks the transport rule gets CheckTransport's error.
func ParseBaseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || strings.ContainsAny(raw, "?#") ||
		(u.Path != "" && u.Path != "/") {
		return nil, ErrNotBaseURL
	}
	if err := CheckTransport(u); err != nil {
		return nil, err
	}
	return u, nil
}

// isASCIILocalhost matches "localhost" in any ASCII case only:
// strings.EqualFold would also take "localhoſt" (U+017F).
func isASCIILocalhost(host string) bool {
	const want = "localhost"
	if len(host) != len(want) {
		return false
	}
	for i := 0; i < len(want); i++ {
		if c := host[i] | 0x20; c != want[i] {
			return false
		}
	}
	return true
}
