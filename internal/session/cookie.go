package session

import (
	"net/http"
	"strings"
)

// CookieValue returns the session id the request's cookie name carries,
// or "". Only a value of the exact shape Create issues (43 base64url
// characters) is read. It scans the Cookie headers itself:
// http.Request.Cookie parses and allocates every cookie, on the path every
// signed-in request takes.
func CookieValue(r *http.Request, name string) string {
	for _, line := range r.Header["Cookie"] {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			part = strings.TrimSpace(part)
			k, v, ok := strings.Cut(part, "=")
			if !ok || k != name {
				continue
			}
			if len(v) == 43 && isBase64URL(v) {
				return v
			}
			return ""
		}
	}
	return ""
}

func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' && c != '_' {
			return false
		}
	}
	return true
}
