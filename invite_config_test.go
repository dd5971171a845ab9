package caddycognito

import (
	"strings"
	"testing"
)

func TestInviteSetupBaseURL(t *testing.T) {
	same := func(s string) string { return s }
	for _, tc := range []struct{ base, wantErr string }{
		{"https://app.example.com", ""},
		{"https://app.example.com/", ""},
		{"http://localhost:9080", ""},
		{"", "base_url is required"},
		{"https://app.example.com/app", `base_url "https://app.example.com/app" must be scheme://host[:port] only`},
		{"https://app.example.com?x=1", "must be scheme://host[:port] only"},
		// A fragment put every link's path and secret after '#': the links
		// opened the home page, whose scripts could read the secret.
		{"https://app.example.com#x", "must be scheme://host[:port] only"},
		{"https://u@app.example.com", "must be scheme://host[:port] only"},
		{"http://app.example.com", "invitations: base_url: must use https (plain http is allowed only on a loopback host)"},
		{"http://app.localhost:9080", "must use https"},
	} {
		s, err := newInviteSetup(InvitationsConfig{BaseURL: tc.base}, same)
		if tc.wantErr == "" {
			if err != nil || s.acceptURL("S") != strings.TrimRight(tc.base, "/")+"/invitations/S/accept" {
				t.Errorf("base_url %q: %v", tc.base, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("base_url %q: err = %v; want %q", tc.base, err, tc.wantErr)
		}
	}
}
