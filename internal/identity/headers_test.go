package identity

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

func TestStripIdentityHeaders(t *testing.T) {
	ih := NewHeaders(DefaultHeaderPrefix)
	h := http.Header{}
	// Raw map writes: the server keeps names it cannot canonicalise
	// (underscores) as the client sent them.
	for _, name := range []string{
		"X-Auth-User", "x-auth-user", "X_Auth_User", "X_AUTH_ROLES", "x-AUTH_email",
		"X-Auth-Anything-New", "X-Auth-",
	} {
		h[name] = []string{"spoofed"}
	}
	h["X-Authorization"] = []string{"kept: no dash after Auth"}
	h["X-Au"] = []string{"kept: shorter than the prefix"}
	h["Authorization"] = []string{"Bearer kept"}
	h["Connection"] = []string{"keep-alive, X-Auth-User", "x_auth_groups,Upgrade"}
	ih.Strip(h)

	for name := range h {
		if strings.HasPrefix(strings.ReplaceAll(strings.ToLower(name), "_", "-"), "x-auth-") {
			t.Errorf("header %q survived", name)
		}
	}
	for _, kept := range []string{"X-Authorization", "X-Au", "Authorization"} {
		if h.Get(kept) == "" {
			t.Errorf("header %q was removed", kept)
		}
	}
	if got := h["Connection"]; !reflect.DeepEqual(got, []string{"keep-alive, Upgrade"}) {
		t.Errorf("Connection = %q; want our names removed and the rest kept", got)
	}

	h = http.Header{"Connection": {"X-Auth-User"}}
	ih.Strip(h)
	if _, ok := h["Connection"]; ok {
		t.Errorf("Connection naming only our header should be removed, got %q", h["Connection"])
	}
}

func TestStripCustomPrefix(t *testing.T) {
	ih := NewHeaders("x-user") // no trailing dash, lower case
	h := http.Header{}
	h["X-User-Id"] = []string{"a"}
	h["X_USER_EMAIL"] = []string{"b"}
	h["X-Auth-User"] = []string{"not ours with this prefix"}
	ih.Strip(h)
	if len(h) != 1 || h.Get("X-Auth-User") == "" {
		t.Fatalf("after strip: %v", h)
	}
	ih.Set(h, &Identity{Subject: "s1", Pool: "p"})
	if h.Get("X-User-User") != "s1" || h.Get("X-User-Pool") != "p" {
		t.Fatalf("headers with custom prefix: %v", h)
	}
}

func TestSetIdentityHeaders(t *testing.T) {
	ih := NewHeaders(DefaultHeaderPrefix)
	h := http.Header{"X-Auth-Email": {"left over"}}
	id := &Identity{
		Subject:  "0f3c-41",
		Username: "ann\r\nX-Injected: 1",
		Groups:   []string{"admins", "a,b", "100%", "ünïcode", "with space"},
		Scopes:   []string{"https://api.example.com/read", "openid"},
		ClientID: "client1",
		Pool:     "main",
	}
	ih.Set(h, id)

	want := map[string]string{
		"X-Auth-User":      "0f3c-41",
		"X-Auth-Sub":       "0f3c-41",
		"X-Auth-Username":  "ann%0D%0AX-Injected:%201",
		"X-Auth-Groups":    "admins,a%2Cb,100%25,%C3%BCn%C3%AFcode,with%20space",
		"X-Auth-Scopes":    "https://api.example.com/read,openid",
		"X-Auth-Client-Id": "client1",
		"X-Auth-Pool":      "main",
	}
	for k, v := range want {
		if got := h[k]; len(got) != 1 || got[0] != v {
			t.Errorf("%s = %q; want [%q]", k, got, v)
		}
	}
	for _, absent := range []string{"X-Auth-Email", "X-Auth-Roles"} {
		if _, ok := h[absent]; ok {
			t.Errorf("%s should be absent for an empty value, got %q", absent, h[absent])
		}
	}
	// The encoding round-trips with any URL unescape.
	var groups []string
	for _, it := range strings.Split(h.Get("X-Auth-Groups"), ",") {
		s, err := url.PathUnescape(it)
		if err != nil {
			t.Fatal(err)
		}
		groups = append(groups, s)
	}
	if !reflect.DeepEqual(groups, id.Groups) {
		t.Errorf("decoded groups %q; want %q", groups, id.Groups)
	}
	// A mapped local user replaces the sub in X-Auth-User.
	ih.Set(h, &Identity{Subject: "s", UserID: "u_1", Roles: []string{"editor"}})
	if h.Get("X-Auth-User") != "u_1" || h.Get("X-Auth-Sub") != "s" || h.Get("X-Auth-Roles") != "editor" {
		t.Errorf("mapped identity headers: %v", h)
	}
}

func TestEncodeHeaderValueNoControlBytes(t *testing.T) {
	for c := 0; c < 256; c++ {
		s := encodeHeaderValue("a"+string([]byte{byte(c)})+"b", true)
		for i := 0; i < len(s); i++ {
			if s[i] < 0x21 || s[i] > 0x7e {
				t.Fatalf("byte %#x encoded as %q still holds %#x", c, s, s[i])
			}
		}
		if d, err := url.PathUnescape(s); err != nil || d != "a"+string([]byte{byte(c)})+"b" {
			t.Fatalf("byte %#x: %q does not decode back (%q, %v)", c, s, d, err)
		}
	}
}

func TestEncodeHeaderValueDoesNotAllocateForPlainValues(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		_ = encodeHeaderValue("https://api.example.com/read", true)
	})
	if allocs != 0 {
		t.Fatalf("plain value allocated %v times", allocs)
	}
}

// TestAlsoStrip: the extra name (a forwarded token's header) is stripped
// in every spelling, from headers, Connection and trailers, and only it:
// a longer name that merely starts with it stays.
func TestAlsoStrip(t *testing.T) {
	ih := NewHeaders(DefaultHeaderPrefix).AlsoStrip("X-Access-Token")
	h := http.Header{}
	h["X-Access-Token"] = []string{"forged"}
	h["X_ACCESS_TOKEN"] = []string{"forged"}
	h["x-access-token"] = []string{"forged"}
	h["X-Access-Token-Hint"] = []string{"kept"}
	h["X-Auth-User"] = []string{"forged"}
	h["Connection"] = []string{"x_access_token, keep-alive"}
	ih.Strip(h)
	if len(h) != 2 || h.Get("X-Access-Token-Hint") != "kept" || h.Get("Connection") != "keep-alive" {
		t.Fatalf("after strip: %v", h)
	}
	auth := NewHeaders(DefaultHeaderPrefix).AlsoStrip("Authorization")
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer forged")
	r.Trailer = http.Header{"Authorization": {"Bearer forged"}}
	auth.StripRequest(r)
	if r.Header.Get("Authorization") != "" || r.Trailer.Get("Authorization") != "" {
		t.Fatalf("Authorization kept: %v / %v", r.Header, r.Trailer)
	}
	plain := NewHeaders(DefaultHeaderPrefix)
	h = http.Header{"Authorization": {"Bearer app"}}
	plain.Strip(h)
	if h.Get("Authorization") == "" {
		t.Fatal("without AlsoStrip, Authorization was stripped")
	}
}

// TestAssertionHeaderIsOurs: the assertion header falls under the prefix,
// so a client-sent one is stripped in every spelling (also from trailers
// and Connection), and SetValues replaces it rather than appending.
func TestAssertionHeaderIsOurs(t *testing.T) {
	for prefix, name := range map[string]string{DefaultHeaderPrefix: "X-Auth-Assertion", "x-user": "X-User-Assertion"} {
		ih := NewHeaders(prefix)
		if ih.AssertionName() != name {
			t.Errorf("prefix %q: assertion header %q; want %q", prefix, ih.AssertionName(), name)
		}
		r := &http.Request{Header: http.Header{}, Trailer: http.Header{}}
		lower := strings.ToLower(name)
		for _, n := range []string{name, lower, strings.ReplaceAll(name, "-", "_"), strings.ToUpper(lower)} {
			r.Header[n] = []string{"spoofed"}
			r.Trailer[n] = []string{"spoofed"}
		}
		r.Header["Connection"] = []string{name}
		ih.StripRequest(r)
		if len(r.Header) != 0 || len(r.Trailer) != 0 {
			t.Errorf("prefix %q: after StripRequest: %v, trailers %v", prefix, r.Header, r.Trailer)
		}
		h := http.Header{name: {"old"}}
		ih.SetValues(h, &HeaderValues{"user"}, "a.b.c", nil)
		if got := h[name]; len(got) != 1 || got[0] != "a.b.c" {
			t.Errorf("prefix %q: %s = %q after SetValues", prefix, name, got)
		}
		ih.SetValues(h, &HeaderValues{"user"}, "", nil)
		if got, ok := h[name]; ok {
			t.Errorf("prefix %q: %s = %q after SetValues without an assertion", prefix, name, got)
		}
	}
}

// TestOnlyIdentityHeaders: identity_headers picks which headers are sent;
// the others are absent even where the header held them before, and Strip
// still removes every client-sent name under the prefix.
func TestOnlyIdentityHeaders(t *testing.T) {
	id := &Identity{Subject: "s1", UserID: "u_1", Username: "ann", Email: "ann@example.com",
		Groups: []string{"admins"}, Scopes: []string{"openid"}, ClientID: "c1", Pool: "main", Roles: []string{"editor"}}
	all := map[string]string{
		"X-Auth-User": "u_1", "X-Auth-Sub": "s1", "X-Auth-Username": "ann", "X-Auth-Email": "ann@example.com",
		"X-Auth-Groups": "admins", "X-Auth-Scopes": "openid", "X-Auth-Client-Id": "c1", "X-Auth-Pool": "main", "X-Auth-Roles": "editor",
	}
	for _, tc := range []struct {
		keys []string
		want []string
	}{
		{nil, []string{"X-Auth-User", "X-Auth-Sub", "X-Auth-Username", "X-Auth-Email", "X-Auth-Groups", "X-Auth-Scopes", "X-Auth-Client-Id", "X-Auth-Pool", "X-Auth-Roles"}},
		{[]string{"user", "email", "roles"}, []string{"X-Auth-User", "X-Auth-Email", "X-Auth-Roles"}},
		{[]string{"client_id"}, []string{"X-Auth-Client-Id"}},
		{[]string{"none"}, nil},
	} {
		ih, err := NewHeaders(DefaultHeaderPrefix).Only(tc.keys)
		if err != nil {
			t.Fatalf("%q: %v", tc.keys, err)
		}
		v := EncodeHeaders(id)
		// SetValues over headers that an earlier handler set: replaced or removed.
		h := http.Header{"Accept": {"*/*"}}
		for name := range all {
			h[name] = []string{"earlier"}
		}
		ih.SetValues(h, &v, "", nil)
		// SetStripped over a client's request: Strip first, as the handlers do.
		r := &http.Request{Header: http.Header{"Accept": {"*/*"}, "X_Auth_Email": {"spoofed"}, "X-Auth-Sub": {"spoofed"}}}
		ih.StripRequest(r)
		ih.SetStripped(r.Header, &v, "", nil)
		for _, got := range []http.Header{h, r.Header} {
			want := http.Header{"Accept": {"*/*"}}
			for _, name := range tc.want {
				want[name] = []string{all[name]}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("identity_headers %q: headers %v; want %v", tc.keys, got, want)
			}
		}
	}
	for _, bad := range [][]string{{"mail"}, {"user", "user"}, {"none", "user"}, {"user", "none"}, {"User"}, {"assertion"}} {
		if _, err := NewHeaders(DefaultHeaderPrefix).Only(bad); err == nil {
			t.Errorf("identity_headers %q accepted", bad)
		}
	}
}
