package identity

import (
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"slices"
	"strings"
)

// DefaultHeaderPrefix starts the name of every identity header sent
// upstream unless a handler's header_prefix says otherwise.
const DefaultHeaderPrefix = "X-Auth-"

// Headers are the names of the upstream headers an identity fills, under
// one prefix: User, Sub, Username, Email, Groups, Scopes, Client-Id, Pool
// and Roles, and Assertion (a signed token of the same identity, when the
// handler signs one). Their values follow one rule so that upstreams can rely on
// them: every byte outside visible ASCII (0x21–0x7E), and `%`, is
// percent-encoded (%XX, upper-case hex); list headers (Groups, Scopes,
// Roles) join their items with `,` and also percent-encode `,` inside an
// item. Any URL unescape function decodes a value (or an item, after
// splitting on `,`).
type Headers struct {
	prefix    string
	also      string // one more name stripped (lower case), or ""
	names     [len(HeaderValues{})]string
	assertion string
	omit      uint16 // bit i set: names[i] is not sent (see Only)
}

// headerKeys name the identity headers in configuration (a handler's
// `identity_headers`), in the order of HeaderValues: X-Auth-User is
// "user", X-Auth-Client-Id "client_id", and so on.
var headerKeys = [len(HeaderValues{})]string{"user", "sub", "username", "email", "groups", "scopes", "client_id", "pool", "roles"}

// NewHeaders names the identity headers under prefix, in canonical form;
// a prefix without a trailing `-` gets one.
func NewHeaders(prefix string) Headers {
	p := textproto.CanonicalMIMEHeaderKey(prefix)
	if !strings.HasSuffix(prefix, "-") {
		// keep a prefix such as "X-Auth" usable: names still need a separator
		p += "-"
	}
	ih := Headers{prefix: strings.ToLower(p), assertion: textproto.CanonicalMIMEHeaderKey(p + "Assertion")}
	for i, k := range headerKeys {
		// client_id names X-Auth-Client-Id: canonical form capitalises
		// after each dash.
		ih.names[i] = textproto.CanonicalMIMEHeaderKey(p + strings.ReplaceAll(k, "_", "-"))
	}
	return ih
}

// Only returns ih sending only the headers named by keys (headerKeys), or
// none of them for the one key "none"; no keys keeps every header. Strip
// is unchanged: a client's header under the prefix is removed whether or
// not it is one that is sent.
func (ih Headers) Only(keys []string) (Headers, error) {
	if len(keys) == 0 {
		return ih, nil
	}
	if len(keys) == 1 && keys[0] == "none" {
		ih.omit = 1<<len(headerKeys) - 1
		return ih, nil
	}
	var send uint16
	for _, k := range keys {
		i := slices.Index(headerKeys[:], k)
		switch {
		case k == "none":
			return ih, fmt.Errorf("identity_headers: none stands alone")
		case i < 0:
			return ih, fmt.Errorf("identity_headers: %q is not one of %s, or none alone", k, strings.Join(headerKeys[:], ", "))
		case send&(1<<i) != 0:
			return ih, fmt.Errorf("identity_headers: %q is listed twice", k)
		}
		send |= 1 << i
	}
	ih.omit = (1<<len(headerKeys) - 1) &^ send
	return ih, nil
}

// AlsoStrip returns ih that also strips the header name (compared like
// the prefix: case-insensitively, `_` as `-`), for one more header the
// handler sets upstream, such as a forwarded token.
func (ih Headers) AlsoStrip(name string) Headers {
	ih.also = strings.ToLower(strings.ReplaceAll(name, "_", "-"))
	return ih
}

// Strip removes every client-sent header that could pass for one of ours:
// any name that starts with the prefix when compared case-insensitively
// and with `_` taken as `-` (CGI-style upstreams such as Django and PHP
// read X_Auth_User and X-Auth-User as the same variable). It also removes
// our names from the Connection header, so that a client cannot list
// them as hop-by-hop and have the proxy drop the values we set.
func (ih Headers) Strip(h http.Header) {
	for name := range h {
		if ih.owns(name) {
			delete(h, name)
		}
	}
	conn, ok := h["Connection"]
	if !ok {
		return
	}
	var kept []string
	for _, line := range conn {
		for _, tok := range strings.Split(line, ",") {
			if tok = strings.TrimSpace(tok); tok != "" && !ih.owns(tok) {
				kept = append(kept, tok)
			}
		}
	}
	if len(kept) == 0 {
		delete(h, "Connection")
		return
	}
	h["Connection"] = []string{strings.Join(kept, ", ")}
}

// StripRequest removes client-sent identity headers from the request's
// header and its trailers. Caddy's reverse proxy forwards request
// trailers, which net/http fills in only when the body has been read to
// its end: the declared ones are removed now, and a chunked body is
// wrapped so that whatever arrives after it is cleaned before the proxy
// copies it. Requests with a known length carry no trailers and cost
// nothing more.
func (ih Headers) StripRequest(r *http.Request) {
	ih.Strip(r.Header)
	if len(r.Trailer) > 0 {
		ih.Strip(r.Trailer)
	}
	if r.Body != nil && r.Body != http.NoBody && (r.ContentLength < 0 || r.Trailer != nil) {
		r.Body = &trailerStripper{ReadCloser: r.Body, r: r, ih: ih}
	}
}

// trailerStripper strips identity names from r.Trailer once the body
// has been read to the end, in the same Read that reports io.EOF.
type trailerStripper struct {
	io.ReadCloser
	r  *http.Request
	ih Headers
}

func (t *trailerStripper) Read(p []byte) (int, error) {
	n, err := t.ReadCloser.Read(p)
	if err == io.EOF && len(t.r.Trailer) > 0 {
		t.ih.Strip(t.r.Trailer)
	}
	return n, err
}

// owns reports whether name falls under the prefix, or is the AlsoStrip name.
func (ih Headers) owns(name string) bool {
	if ih.also != "" && len(name) == len(ih.also) && foldedPrefix(name, ih.also) {
		return true
	}
	return foldedPrefix(name, ih.prefix)
}

// foldedPrefix reports whether name starts with prefix (lower case, `-`)
// when compared case-insensitively and with `_` taken as `-`.
func foldedPrefix(name, prefix string) bool {
	if len(name) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		c := name[i]
		switch {
		case c == '_':
			c = '-'
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		if c != prefix[i] {
			return false
		}
	}
	return true
}

// Set writes the identity's headers, replacing (never appending to)
// whatever was there, and leaving out empty values.
func (ih Headers) Set(h http.Header, id *Identity) {
	v := EncodeHeaders(id)
	ih.SetValues(h, &v, "", nil)
}

// HeaderValues are an identity's header values, encoded, in the order of
// SetValues. A session computes them once, not per request.
type HeaderValues [9]string

// EncodeHeaders encodes the values of an identity's headers. User is the
// local user id when the identity is mapped to one, else the sub.
func EncodeHeaders(id *Identity) HeaderValues {
	return HeaderValues{
		encodeHeaderValue(id.User(), false),
		encodeHeaderValue(id.Subject, false),
		encodeHeaderValue(id.Username, false),
		encodeHeaderValue(id.Email, false),
		encodeHeaderList(id.Groups),
		encodeHeaderList(id.Scopes),
		encodeHeaderValue(id.ClientID, false),
		encodeHeaderValue(id.Pool, false),
		encodeHeaderList(id.Roles),
	}
}

// ValueSlots back the []string of every header SetValues writes, so that
// one request's identity headers cost one allocation, or none when the
// caller's per-request state holds the slots.
type ValueSlots [len(HeaderValues{}) + 1]string

// SetValues writes encoded values under the headers' names, and the
// signed assertion (a token is visible ASCII: it needs no encoding); an
// empty value, or a header that Only leaves out, removes its header. slots,
// when not nil, backs the values (it must be this request's own, never
// shared with another request, as handlers such as Caddy's
// `request_header` replace values in place).
func (ih Headers) SetValues(h http.Header, v *HeaderValues, assertion string, slots *ValueSlots) {
	ih.set(h, v, assertion, slots, false)
}

// SetStripped is SetValues on a header that Strip has cleaned since: none
// of the names is there, so there is nothing to remove (a request's
// header, stripped when the handler began).
func (ih Headers) SetStripped(h http.Header, v *HeaderValues, assertion string, slots *ValueSlots) {
	ih.set(h, v, assertion, slots, true)
}

func (ih Headers) set(h http.Header, v *HeaderValues, assertion string, slots *ValueSlots, stripped bool) {
	if slots == nil {
		slots = new(ValueSlots)
	}
	hs := headerSetter{h: h, vals: slots[:0], stripped: stripped}
	for i, name := range ih.names {
		value := v[i]
		if ih.omit&(1<<i) != 0 {
			value = ""
		}
		hs.set(name, value)
	}
	hs.set(ih.assertion, assertion)
}

// AssertionName is the canonical name of the assertion header.
func (ih Headers) AssertionName() string { return ih.assertion }

type headerSetter struct {
	h        http.Header
	vals     []string
	stripped bool // h holds none of the names
}

func (hs *headerSetter) set(name, value string) {
	if value == "" {
		if !hs.stripped {
			delete(hs.h, name)
		}
		return
	}
	hs.vals = append(hs.vals, value)
	n := len(hs.vals)
	hs.h[name] = hs.vals[n-1 : n : n] // full slice expression: an append by others copies
}

// encodeHeaderValue applies the header encoding rule (see Headers);
// inList also encodes `,`. Values that need nothing are returned as they
// are, without allocating.
func encodeHeaderValue(s string, inList bool) string {
	i := 0
	for ; i < len(s); i++ {
		if needsEscape(s[i], inList) {
			break
		}
	}
	if i == len(s) {
		return s
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) + 16)
	b.WriteString(s[:i])
	for ; i < len(s); i++ {
		c := s[i]
		if needsEscape(c, inList) {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func needsEscape(c byte, inList bool) bool {
	return c <= 0x20 || c >= 0x7f || c == '%' || (inList && c == ',')
}

func encodeHeaderList(items []string) string {
	switch len(items) {
	case 0:
		return ""
	case 1:
		return encodeHeaderValue(items[0], true)
	}
	parts := make([]string, len(items))
	for i, it := range items {
		parts[i] = encodeHeaderValue(it, true)
	}
	return strings.Join(parts, ",")
}
