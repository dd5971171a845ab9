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

// TestLoginClaimRule: `require claim` on cognito_login reads the
// session's ID token (oidc-provider's sub is the login name): alice
// reaches the upstream, bob signs in but gets the 403 page and the
// upstream never sees him; a boolean claim compares in its JSON form.
func TestLoginClaimRule(t *testing.T) {
	s := startLoginSite(t, "admit email_domain example.com\n\t\t\trequire claim sub alice carol\n\t\t\trequire claim email_verified true")
	b := newBrowser(t)
	resp, page := get(t, b, loginSiteURL+"/docs")
	resp, page = signIn(t, b, resp, page, "alice")
	if resp.StatusCode != 200 || page != "upstream ok" {
		t.Fatalf("alice: %d %.200s", resp.StatusCode, page)
	}
	_, hits := s.upstream.seen()

	b = newBrowser(t)
	resp, page = get(t, b, loginSiteURL+"/docs")
	resp, page = signIn(t, b, resp, page, "bob")
	if resp.StatusCode != 403 || page == "upstream ok" {
		t.Fatalf("bob: %d %.200s; want the 403 page", resp.StatusCode, page)
	}
	if _, after := s.upstream.seen(); after != hits {
		t.Errorf("bob reached the upstream")
	}
}
