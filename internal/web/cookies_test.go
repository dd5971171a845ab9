package web

import (
	"net/http"
	"testing"
)

func TestStripOurCookies(t *testing.T) {
	for in, want := range map[string]string{ //nolint:gosec // G101: made-up Cookie headers for the filter
		"cognito_session=abc":                                    "",
		"a=1; cognito_session=abc; b=2":                          "a=1; b=2",
		"__Host-cognito_session=abc;theme=dark":                  "theme=dark",
		"cognito_login_AbCd=x; cognito_logout=y; my_cognito_x=1": "my_cognito_x=1",
		"sid=1; csrftoken=2":                                     "sid=1; csrftoken=2",
	} {
		h := http.Header{"Cookie": {in}}
		StripOurCookies(h)
		if got := h.Get("Cookie"); got != want {
			t.Errorf("%q → %q, want %q", in, got, want)
		}
	}
}
