package urlpolicy

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestSite(t *testing.T) {
	trustAll := func(*http.Request) bool { return true }
	for _, tc := range []struct {
		name      string
		siteURL   string
		tls       bool
		headers   map[string]string
		trusted   TrustedProxy
		origin    string
		httpsSite bool
	}{
		{name: "plain request", origin: "http://app.example.com"},
		{name: "tls request", tls: true, origin: "https://app.example.com", httpsSite: true},
		{name: "configured https wins", siteURL: "https://site.example.com/auth/callback", origin: "https://site.example.com", httpsSite: true},
		{name: "configured upper-case https", siteURL: "HTTPS://site.example.com/cb", origin: "https://site.example.com", httpsSite: true},
		{name: "configured http wins over tls", siteURL: "http://localhost:8080", tls: true, origin: "http://localhost:8080"},
		{name: "configured wins over trusted headers", siteURL: "https://site.example.com",
			headers: map[string]string{"X-Forwarded-Proto": "http", "X-Forwarded-Host": "other.example"}, trusted: trustAll,
			origin: "https://site.example.com", httpsSite: true},
		{name: "untrusted forwarded headers ignored",
			headers: map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"},
			origin:  "http://app.example.com"},
		{name: "nil trusted trusts nobody",
			headers: map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"},
			trusted: nil, origin: "http://app.example.com"},
		{name: "trusted proxy", headers: map[string]string{"X-Forwarded-Proto": "https, http", "X-Forwarded-Host": "site.example.com:8443, x"},
			trusted: trustAll, origin: "https://site.example.com:8443", httpsSite: true},
		{name: "trusted proxy says http over tls", tls: true, headers: map[string]string{"X-Forwarded-Proto": "http"},
			trusted: trustAll, origin: "http://app.example.com"},
		{name: "trusted proxy, junk values", tls: true,
			headers: map[string]string{"X-Forwarded-Proto": "gopher", "X-Forwarded-Host": "evil.example/path"},
			trusted: trustAll, origin: "https://app.example.com", httpsSite: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "http://app.example.com/x", nil)
			if !tc.tls {
				r.TLS = nil
			} else {
				r.TLS = &tls.ConnectionState{}
			}
			for k, v := range tc.headers {
				r.Header.Set(k, v)
			}
			if got := SiteOrigin(tc.siteURL, r, tc.trusted); got != tc.origin {
				t.Errorf("SiteOrigin = %q; want %q", got, tc.origin)
			}
			if got := SiteIsHTTPS(tc.siteURL, r, tc.trusted); got != tc.httpsSite {
				t.Errorf("SiteIsHTTPS = %v; want %v", got, tc.httpsSite)
			}
			if tc.siteURL == "" {
				// RequestSite is the same rule, without building the origin.
				if https, host := RequestSite(r, tc.trusted); Origin(https, host) != tc.origin {
					t.Errorf("RequestSite = %v, %q; want %q", https, host, tc.origin)
				}
			}
		})
	}
}

// TestSiteIsHTTPSAsksOnlyWithHeader: the trusted-proxy lookup costs a
// context walk, and every request asks whether the site is https.
func TestSiteIsHTTPSAsksOnlyWithHeader(t *testing.T) {
	asked := false
	r := httptest.NewRequest(http.MethodGet, "http://app.example.com/", nil)
	SiteIsHTTPS("", r, func(*http.Request) bool { asked = true; return true })
	if asked {
		t.Fatal("trusted was consulted without an X-Forwarded-Proto")
	}
	RequestSite(r, func(*http.Request) bool { asked = true; return true })
	if asked {
		t.Fatal("RequestSite consulted trusted without a forwarding header")
	}
}
