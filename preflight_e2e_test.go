package caddycognito

import (
	"net/http"
	"strings"
	"testing"
)

// preflight sends an OPTIONS request; with acrm, as a CORS preflight.
func preflight(t *testing.T, c *http.Client, u string, acrm bool) *reply {
	t.Helper()
	req, _ := http.NewRequest(http.MethodOptions, u, nil)
	req.Header.Set("Origin", "https://app.example.org")
	if acrm {
		req.Header.Set("Access-Control-Request-Method", "PUT")
		req.Header.Set("Access-Control-Request-Headers", "authorization")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }() // read-only
	r, _ := readReply(resp)
	return r
}

// TestBearerAllowPreflight: with allow_preflight a CORS preflight without
// a token reaches the next handler; a plain OPTIONS still needs a token;
// without the option a preflight gets 401 as before.
func TestBearerAllowPreflight(t *testing.T) {
	ti := newTestIssuer(t)
	up := newEchoUpstream(t)
	tester := startCaddy(t, ti, up.URL, "", `
		cognito_bearer /cors/* {
			allow_preflight
		}
		cognito_bearer /plain/*
	`)
	_, before := up.seen()
	if r := preflight(t, tester.Client, "http://localhost:9080/cors/x", true); r.StatusCode != 200 {
		t.Fatalf("preflight with allow_preflight: status %d, want the upstream's 200", r.StatusCode)
	}
	if _, hits := up.seen(); hits != before+1 {
		t.Fatalf("the preflight did not reach the upstream (hits %d → %d)", before, hits)
	}
	if r := preflight(t, tester.Client, "http://localhost:9080/cors/x", false); r.StatusCode != 401 {
		t.Errorf("OPTIONS without Access-Control-Request-Method: status %d, want 401", r.StatusCode)
	}
	if r := preflight(t, tester.Client, "http://localhost:9080/plain/x", true); r.StatusCode != 401 {
		t.Errorf("preflight without allow_preflight: status %d, want 401", r.StatusCode)
	}
	if _, hits := up.seen(); hits != before+1 {
		t.Errorf("refused requests reached the upstream (hits %d, want %d)", hits, before+1)
	}
}

// TestLoginAllowPreflight: with allow_preflight (even with
// `unauthenticated redirect`) a preflight without a session reaches the
// next handler and is never redirected; a plain OPTIONS is asked to sign
// in as before; without the option a preflight gets the usual 401 JSON.
func TestLoginAllowPreflight(t *testing.T) {
	s := startLoginSite(t, "allow_preflight\n\t\t\tunauthenticated redirect")
	c := noRedirects(newBrowser(t))
	_, before := s.upstream.seen()
	if r := preflight(t, c, loginSiteURL+"/api/x", true); r.StatusCode != 200 || r.Header.Get("Location") != "" {
		t.Fatalf("preflight with allow_preflight: status %d, Location %q; want the upstream's 200", r.StatusCode, r.Header.Get("Location"))
	}
	if _, hits := s.upstream.seen(); hits != before+1 {
		t.Fatalf("the preflight did not reach the upstream (hits %d → %d)", before, hits)
	}
	if r := preflight(t, c, loginSiteURL+"/api/x", false); r.StatusCode != http.StatusFound {
		t.Errorf("OPTIONS without Access-Control-Request-Method: status %d, want 302 (unauthenticated redirect)", r.StatusCode)
	}
	if _, hits := s.upstream.seen(); hits != before+1 {
		t.Errorf("a request without a session reached the upstream")
	}

	s = startLoginSite(t, "")
	r := preflight(t, c, loginSiteURL+"/api/x", true)
	if r.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		t.Errorf("preflight without allow_preflight: status %d (%s), want 401 JSON", r.StatusCode, r.Header.Get("Content-Type"))
	}
	if _, hits := s.upstream.seen(); hits != 0 {
		t.Errorf("without allow_preflight the preflight reached the upstream")
	}
}
