package urlpolicy

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxReturnToLen bounds the `next` value. Real return paths are short; a
// long one is either an attack payload or something that will overflow the
// state cookie that carries it through the hosted UI round trip.
const maxReturnToLen = 2048

// ReturnPolicy decides where a browser may be sent back to after sign-in or
// logout (DESIGN.md, Invariants: "`next`/return URLs are same-site relative
// paths or an explicit allow-list; nothing else is followed").
//
// Wiring notes for cognito_login:
//
//   - Call Validate at Provision time so a bad allow-list fails the config
//     load instead of silently refusing every redirect.
//   - Call Resolve twice: when the login starts (so an unacceptable `next` is
//     never stored in the state cookie) and again on the callback, right
//     before the 302 (the stored value is data, not trust).
//   - Always redirect to the returned target, never to the input, even when
//     ok is true: the target is re-serialised and may differ from the input.
//   - ok=false with a non-empty input is worth a debug log line (without the
//     value: it is attacker-controlled and may be huge).
//
// The zero value is usable: no absolute URLs allowed, Default "/".
type ReturnPolicy struct {
	// AllowedOrigins is an explicit allow-list of absolute origins, e.g.
	// "https://app.example.com" (scheme, host, optional port; no path, no
	// wildcards). Hosts compare case-insensitively and default ports are
	// normalised; anything else must match exactly, so an internationalised
	// host must be listed in its punycode (xn--) form to be accepted.
	AllowedOrigins []string

	// Default is where to go when `next` is refused or empty: a same-site
	// relative path that passes the same rules as `next`. Empty means "/".
	Default string
}

// Validate reports configuration errors: every allowed origin must be a
// well-formed https origin (http only for loopback hosts, for local
// development) and Default must be a safe relative path.
func (p ReturnPolicy) Validate() error {
	var errs []error
	for _, o := range p.AllowedOrigins {
		if _, err := parseAllowedOrigin(o); err != nil {
			errs = append(errs, err)
		}
	}
	if p.Default != "" {
		if _, ok := resolveRelative(p.Default); !ok {
			errs = append(errs, fmt.Errorf("return default %q: must be a same-site path starting with a single '/' (no scheme, host, backslash, control characters, '//' or dot segments)", p.Default))
		}
	}
	return errors.Join(errs...)
}

// Resolve returns where to send the browser for the requested `next` value.
// ok is true only when next was acceptable; otherwise target is the policy's
// Default (also for an empty next). The target is rebuilt from the parsed
// URL, never copied from the input, so nothing ambiguous survives.
//
// Resolve fails closed: an allow-list entry that does not pass Validate
// matches nothing, and an unusable Default is replaced by "/".
func (p ReturnPolicy) Resolve(next string) (target string, ok bool) {
	if next != "" && len(next) <= maxReturnToLen {
		if strings.HasPrefix(next, "/") {
			if t, ok := resolveRelative(next); ok {
				return t, true
			}
		} else if t, ok := p.resolveAbsolute(next); ok {
			return t, true
		}
	}
	return p.defaultTarget(), false
}

func (p ReturnPolicy) defaultTarget() string {
	if p.Default != "" {
		if t, ok := resolveRelative(p.Default); ok {
			return t
		}
	}
	return "/"
}

// origin is a normalised scheme://host[:port] used for exact comparison.
type origin struct {
	scheme, host string // host lower-case, without brackets for IPv6
	port         int    // always explicit (default port filled in)
}

func (o origin) String() string {
	host := o.host
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if o.port == defaultPort(o.scheme) {
		return o.scheme + "://" + host
	}
	return o.scheme + "://" + host + ":" + strconv.Itoa(o.port)
}

func defaultPort(scheme string) int {
	if scheme == "http" {
		return 80
	}
	return 443
}

// parseAllowedOrigin checks one configured origin and normalises it.
func parseAllowedOrigin(s string) (origin, error) {
	fail := func(why string) (origin, error) {
		return origin{}, fmt.Errorf("allowed origin %q: %s", s, why)
	}
	if !isPlainURLText(s) {
		return fail("must be printable ASCII without spaces or backslashes (write internationalised hosts in punycode)")
	}
	u, err := url.Parse(s)
	if err != nil {
		return fail("not a URL")
	}
	if u.User != nil || u.Opaque != "" || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery || (u.Path != "" && u.Path != "/") {
		return fail("must be scheme://host[:port] only, without user info, path, query or fragment")
	}
	o, ok := originOf(u)
	if !ok {
		return fail("must be an http(s) URL with a valid host and port")
	}
	if net.ParseIP(o.host) == nil && !isDNSName(o.host) {
		return fail("host must be a DNS name (letters, digits, '-', '.'; no wildcards) or an IP address")
	}
	if CheckTransport(u) != nil {
		return fail("must use https (http is allowed only for localhost and loopback addresses)")
	}
	return o, nil
}

// originOf extracts the normalised origin of an absolute http(s) URL.
func originOf(u *url.URL) (origin, bool) {
	scheme := strings.ToLower(u.Scheme)
	if scheme != "https" && scheme != "http" {
		return origin{}, false
	}
	// '%' in the authority is how "google.com%2f%2f.example.com" style
	// payloads hide a different host from one parser or the other.
	if u.Host == "" || strings.ContainsAny(u.Host, "%@\\") {
		return origin{}, false
	}
	host := strings.ToLower(u.Hostname())
	if host == "" {
		return origin{}, false
	}
	port := defaultPort(scheme)
	if ps := u.Port(); ps != "" {
		n, err := strconv.Atoi(ps)
		if err != nil || n < 1 || n > 65535 {
			return origin{}, false
		}
		port = n
	} else if strings.HasSuffix(u.Host, ":") {
		return origin{}, false // "host:" — legal, but nobody writes it on purpose
	}
	return origin{scheme: scheme, host: host, port: port}, true
}

func isDNSName(host string) bool {
	if host == "" || len(host) > 253 {
		return false
	}
	for label := range strings.SplitSeq(host, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if ok := 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-'; !ok {
				return false
			}
		}
	}
	return true
}

// resolveAbsolute accepts an absolute URL whose origin is allow-listed.
func (p ReturnPolicy) resolveAbsolute(next string) (string, bool) {
	if len(p.AllowedOrigins) == 0 || !isPlainURLText(next) {
		return "", false
	}
	u, err := url.Parse(next)
	if err != nil || u.User != nil || u.Opaque != "" {
		return "", false
	}
	// The raw text must spell "scheme://host" itself: "https:/host",
	// "https:host" and escaped hosts are parsed differently by browsers and
	// by Go, so the authority we compare must be exactly the one we read.
	sep := len(u.Scheme) + len("://")
	if len(next) < sep || !strings.EqualFold(next[:sep], u.Scheme+"://") {
		return "", false
	}
	authority, tail := next[sep:], ""
	if i := strings.IndexAny(authority, "/?#"); i >= 0 {
		authority, tail = authority[:i], authority[i:]
	}
	if authority != u.Host {
		return "", false
	}
	got, ok := originOf(u)
	if !ok {
		return "", false
	}
	for _, a := range p.AllowedOrigins {
		want, err := parseAllowedOrigin(a)
		if err != nil || want != got {
			continue
		}
		// The path part gets the same scrutiny as a relative next.
		if tail == "" {
			tail = "/"
		} else if tail[0] != '/' {
			tail = "/" + tail // "https://host?x" and "https://host#x"
		}
		rest, ok := resolveRelative(tail)
		if !ok {
			return "", false
		}
		// The configured spelling of the origin, not the requested one.
		return want.String() + rest, true
	}
	return "", false
}

// resolveRelative accepts a same-origin path(+query+fragment) and returns it
// re-serialised. The rules are checked on the value as given and once more
// after one round of percent-decoding, because some component between here
// and the browser (a proxy, a framework, the application behind Caddy) may
// decode once more, and "/%2f%2fevil.com" must not become "//evil.com" there.
func resolveRelative(next string) (string, bool) {
	if len(next) > maxReturnToLen || !isPlainURLText(next) {
		return "", false
	}
	decoded, err := url.PathUnescape(next)
	if err != nil {
		return "", false // malformed %-escape: ambiguous by definition
	}
	for _, s := range []string{next, decoded} {
		if !safeRelative(s) {
			return "", false
		}
	}
	// The path alone, decoded once, must also be clean: "/%3F//evil" hides
	// its "//" behind an encoded '?' in the whole-string decode above.
	rawPath, _, _ := strings.Cut(next, "?")
	rawPath, _, _ = strings.Cut(rawPath, "#")
	if p, err := url.PathUnescape(rawPath); err != nil || !cleanPath(p) {
		return "", false
	}

	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return "", false
	}
	out := u.EscapedPath()
	if u.RawQuery != "" {
		out += "?" + escapeQuery(u.RawQuery)
	}
	if u.Fragment != "" {
		out += "#" + u.EscapedFragment()
	}
	// Belt and braces: whatever the re-serialisation did, the result must
	// still be a clean same-origin reference.
	if !safeRelative(out) {
		return "", false
	}
	return out, true
}

// isPlainURLText reports whether s is printable ASCII without spaces,
// backslashes or the characters that only appear in injection payloads.
// Browsers percent-encode all of these before they send a URL, so a `next`
// that contains one raw did not come from a browser's address bar.
func isPlainURLText(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '\\' || c == '"' || c == '<' || c == '>' || c == '`' {
			return false
		}
	}
	return true
}

// safeRelative checks one form (raw or decoded) of a relative reference.
func safeRelative(s string) bool {
	if s == "" || s[0] != '/' {
		return false
	}
	if len(s) > 1 && (s[1] == '/' || s[1] == '\\') {
		return false // "//host" and "/\host" are network-path references to browsers
	}
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		switch {
		case r == '\\':
			return false // browsers treat '\' as '/' in http(s) URLs
		case r == ' ':
			// An encoded space ("/a/b%20c") is a legitimate file name; a raw
			// one was refused by isPlainURLText already.
		case unicode.IsSpace(r), unicode.IsControl(r), unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp):
			// Browsers strip tab/CR/LF ("/\t/evil.com" becomes "//evil.com");
			// format characters (bidi overrides, zero-width) disguise URLs.
			return false
		}
	}
	path, _, _ := strings.Cut(s, "?")
	path, _, _ = strings.Cut(path, "#")
	return cleanPath(path)
}

// cleanPath refuses empty and dot segments. Neither occurs in a URL a real
// page links to, and both change meaning under normalisation: "/.//evil.com"
// and "/x/..//evil.com" normalise to "//evil.com".
func cleanPath(path string) bool {
	if strings.Contains(path, "//") {
		return false
	}
	for seg := range strings.SplitSeq(path, "/") {
		if seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

// escapeQuery percent-encodes every byte of an already-validated raw query
// that RFC 3986 does not allow there, keeping existing %XX escapes and the
// parameter order (re-encoding through url.Values would reorder them).
func escapeQuery(q string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(q); i++ {
		c := q[i]
		if queryByteOK(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

func queryByteOK(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	// unreserved, sub-delims, ':' '@' '/' '?' and '%' (escapes were
	// validated by url.PathUnescape before we get here).
	return strings.IndexByte("-._~!$&'()*+,;=:@/?%", c) >= 0
}
