package urlpolicy

import (
	"net/http"
	"net/url"
	"strings"
)

// TrustedProxy reports whether r came from one of the server's trusted
// proxies, so that its X-Forwarded-Proto and X-Forwarded-Host may be
// believed. The Caddy glue answers it from Caddy's trusted_proxies.
type TrustedProxy func(r *http.Request) bool

// SiteOrigin is scheme://host of the site as the browser sees it: the
// origin of siteURL when one is configured (redirect_uri, base_url), else
// the request's (see RequestSite).
func SiteOrigin(siteURL string, r *http.Request, trusted TrustedProxy) string {
	if siteURL != "" {
		if u, err := url.Parse(siteURL); err == nil {
			return u.Scheme + "://" + u.Host
		}
	}
	https, host := RequestSite(r, trusted)
	return Origin(https, host)
}

// RequestSite is the scheme (https or not) and host[:port] of the site as
// the browser sees it, from the request, without building a string: the
// connection's TLS and Host, with X-Forwarded-Proto and -Host counting only
// when trusted says the request came through a trusted proxy; a nil
// trusted trusts nobody.
func RequestSite(r *http.Request, trusted TrustedProxy) (https bool, host string) {
	https, host = r.TLS != nil, r.Host
	// Every signed request with assertions asks: consult trusted only when
	// there is a forwarding header to believe.
	xfp, xfh := r.Header.Get("X-Forwarded-Proto"), r.Header.Get("X-Forwarded-Host")
	if (xfp != "" || xfh != "") && trusted != nil && trusted(r) {
		if p := firstValue(xfp); p == "http" || p == "https" {
			https = p == "https"
		}
		if h := firstValue(xfh); validHost(h) {
			host = h
		}
	}
	return https, host
}

// Origin is scheme://host for the site RequestSite found.
func Origin(https bool, host string) string {
	if https {
		return "https://" + host
	}
	return "http://" + host
}

// SiteIsHTTPS says whether the site is https as the browser sees it (the
// scheme of SiteOrigin), without building the origin: it decides cookie
// names and the Secure flag, and every request asks. It consults trusted
// only when the request has an X-Forwarded-Proto to believe.
func SiteIsHTTPS(siteURL string, r *http.Request, trusted TrustedProxy) bool {
	if siteURL != "" {
		// url.Parse lower-cases the scheme, so SiteOrigin does too: compare
		// the same way, or "HTTPS://…" would get non-Secure cookies.
		return len(siteURL) >= len("https://") && strings.EqualFold(siteURL[:len("https://")], "https://")
	}
	// Indexed: the name is canonical, and Get would canonicalise it again.
	if v := r.Header["X-Forwarded-Proto"]; len(v) > 0 && v[0] != "" && trusted != nil && trusted(r) {
		if p := firstValue(v[0]); p == "http" || p == "https" {
			return p == "https"
		}
	}
	return r.TLS != nil
}

// firstValue is the first entry of a comma-separated forwarding header
// (the outermost proxy's, when proxies append).
func firstValue(v string) string {
	v, _, _ = strings.Cut(v, ",")
	return strings.TrimSpace(v)
}

// validHost accepts host[:port] made of the characters a host may have.
func validHost(h string) bool {
	if h == "" || len(h) > 255 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-.:[]", c) >= 0; !ok {
			return false
		}
	}
	return true
}
