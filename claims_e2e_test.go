package caddycognito

import "testing"

// TestBearerClaimRule: `require claim` in Caddy, over a string claim and
// a list claim on two lines (both must hold), with the 403
// insufficient_scope answer of any unmet requirement.
func TestBearerClaimRule(t *testing.T) {
	ti := newTestIssuer(t)
	up := newEchoUpstream(t)
	tester := startCaddy(t, ti, up.URL, "", `
		cognito_bearer {
			require claim custom:tenant acme globex
			require claim cognito:groups staff
		}
	`)
	for _, c := range []struct {
		what   string
		claims map[string]any
		status int
	}{
		{"both met", map[string]any{"custom:tenant": "acme", "cognito:groups": []string{"ops", "staff"}}, 200},
		{"the other tenant value", map[string]any{"custom:tenant": "globex", "cognito:groups": []string{"staff"}}, 200},
		{"wrong tenant", map[string]any{"custom:tenant": "initech", "cognito:groups": []string{"staff"}}, 403},
		{"not in the list", map[string]any{"custom:tenant": "acme", "cognito:groups": []string{"ops"}}, 403},
		{"no tenant claim", map[string]any{"cognito:groups": []string{"staff"}}, 403},
	} {
		tok := ti.Sign(ti.AccessClaims(c.claims))
		resp, body := do(t, tester, "/", map[string][]string{"Authorization": {"Bearer " + tok}})
		if resp.StatusCode != c.status {
			t.Errorf("%s: status %d %s, want %d", c.what, resp.StatusCode, body, c.status)
			continue
		}
		if c.status == 403 {
			if got := resp.Header.Get("WWW-Authenticate"); got != `Bearer realm="cognito", error="insufficient_scope", error_description="lacks a required claim"` {
				t.Errorf("%s: challenge %q", c.what, got)
			}
		}
	}
}
