package session

import (
	"net/http"
	"strings"
	"testing"
)

func TestCookieValue(t *testing.T) {
	id := strings.Repeat("aB3-_", 8) + "xyz" // 43 base64url characters, as Create issues
	for _, c := range []struct {
		name    string
		headers []string
		want    string
	}{
		{"only cookie", []string{"cognito_session=" + id}, id},
		{"among others", []string{"a=1; cognito_session=" + id + "; b=2"}, id},
		{"second header", []string{"a=1", "cognito_session=" + id}, id},
		{"prefixed name is another cookie", []string{"__Host-cognito_session=" + id}, ""},
		{"too short", []string{"cognito_session=" + id[:42]}, ""},
		{"not base64url", []string{"cognito_session=" + id[:42] + "="}, ""},
		{"first one counts", []string{"cognito_session=bad; cognito_session=" + id}, ""},
		{"none", nil, ""},
	} {
		r := &http.Request{Header: http.Header{"Cookie": c.headers}}
		if got := CookieValue(r, "cognito_session"); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}
