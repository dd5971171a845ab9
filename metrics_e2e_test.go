package caddycognito

import (
	"bufio"
	"bytes"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// metricValue reads one series, written exactly as Caddy's admin /metrics
// prints it, from there; -1 when absent.
func metricValue(t *testing.T, series string) float64 {
	t.Helper()
	code, raw := adminRaw(t, "GET", "/metrics", nil)
	if code != 200 {
		t.Fatalf("GET /metrics: %d", code)
	}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	return -1
}

// TestMappedRequestsCounted: `users mapped` counts an unmapped token as
// deny/unmapped and its store lookups in the user cache (a miss, then a
// hit while nothing changed), on Caddy's own /metrics.
func TestMappedRequestsCounted(t *testing.T) {
	ti := newTestIssuer(t)
	up := newEchoUpstream(t)
	tester := startCaddy(t, ti, up.URL, "store sqlite "+filepath.Join(t.TempDir(), "cognito.db"), `
		cognito_bearer {
			users mapped
		}
	`)
	const (
		unmapped = `caddy_cognito_requests_total{handler="bearer",reason="unmapped",result="deny"}`
		hit      = `caddy_cognito_cache_lookups_total{cache="user",result="hit"}`
		miss     = `caddy_cognito_cache_lookups_total{cache="user",result="miss"}`
	)
	before := map[string]float64{}
	for _, s := range []string{unmapped, hit, miss} {
		before[s] = max(metricValue(t, s), 0)
	}
	auth := map[string][]string{"Authorization": {"Bearer " + ti.Sign(ti.AccessClaims(nil))}}
	for i := 0; i < 2; i++ {
		if resp, body := do(t, tester, "/", auth); resp.StatusCode != 403 {
			t.Fatalf("unmapped token: %d %q", resp.StatusCode, body)
		}
	}
	for s, want := range map[string]float64{unmapped: 2, miss: 1, hit: 1} {
		if got := metricValue(t, s) - before[s]; got != want {
			t.Errorf("%s grew by %v, want %v", s, got, want)
		}
	}
}

// TestInvitationRequestsCounted: cognito_invitations counts a dead link,
// a method it does not take and an accept without a session, by reason.
func TestInvitationRequestsCounted(t *testing.T) {
	startLoginSiteWith(t, `invitations {
				base_url `+loginSiteURL+`
			}`, `cognito_invitations`, `admit invited`)
	series := func(reason string) string {
		return `caddy_cognito_requests_total{handler="invitations",reason="` + reason + `",result="deny"}`
	}
	before := map[string]float64{}
	for _, r := range []string{"invalid_invitation", "invalid_request", "no_session"} {
		before[r] = max(metricValue(t, series(r)), 0)
	}
	noRedirect := &http.Client{Transport: ownTransport(t), CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	link := loginSiteURL + "/invitations/not-a-real-secret-but-long-enough/accept"
	for method, want := range map[string]int{http.MethodGet: 404, http.MethodPut: 405, http.MethodPost: 303} {
		req, _ := http.NewRequest(method, link, strings.NewReader("csrf=x"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close() // read-only
		if resp.StatusCode != want {
			t.Errorf("%s %s: %d, want %d", method, link, resp.StatusCode, want)
		}
	}
	for _, r := range []string{"invalid_invitation", "invalid_request", "no_session"} {
		if got := metricValue(t, series(r)) - before[r]; got != 1 {
			t.Errorf("%s grew by %v, want 1", series(r), got)
		}
	}
}
