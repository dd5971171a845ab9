package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddy-cognito/caddy-cognito/integration/internal/cognitolocal"
)

// healthReport is the JSON of GET /cognito/health (and of cognito_health
// asked from a trusted address).
type healthReport struct {
	Status string `json:"status"`
	Pools  map[string]struct {
		Keys          int        `json:"keys"`
		KeysFetchedAt *time.Time `json:"keys_fetched_at"`
	} `json:"pools"`
	Store   string   `json:"store"`
	Failing []string `json:"failing"`
}

func getHealth(t *testing.T, url string) (int, healthReport, string) {
	t.Helper()
	resp, err := http.Get(url) //nolint:gosec // G107: the test's own loopback Caddy
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }() // read-only
	body, _ := io.ReadAll(resp.Body)
	var rep healthReport
	if err := json.Unmarshal(body, &rep); err != nil {
		t.Fatalf("GET %s: HTTP %d, body %q is not JSON: %v", url, resp.StatusCode, body, err)
	}
	return resp.StatusCode, rep, string(body)
}

// TestObserveHealthy: with keys and an open store, the admin endpoint
// and cognito_health (asked from loopback: the details) answer 200 ok.
func TestObserveHealthy(t *testing.T) {
	ls := newObserveSite(t)
	for _, url := range []string{"http://" + ls.caddy.AdminAddr + "/cognito/health", ls.base + "/healthz"} {
		code, rep, body := getHealth(t, url)
		main, ok := rep.Pools["main"]
		if code != 200 || rep.Status != "ok" || rep.Store != "ok" || !ok || main.Keys < 1 || main.KeysFetchedAt == nil || len(rep.Failing) != 0 {
			t.Errorf("GET %s: HTTP %d %s; want 200 ok with the pool's keys and the store", url, code, body)
		}
		if main.KeysFetchedAt != nil && time.Since(*main.KeysFetchedAt) > 10*time.Minute {
			t.Errorf("keys_fetched_at %v is not this run's fetch", main.KeysFetchedAt)
		}
	}
}

// TestObserveHealthJWKSUnreachable: a pool whose key set cannot be fetched
// makes both health answers 503, naming the pool; once the JWKS answers
// (the key set retries), both are 200.
func TestObserveHealthJWKSUnreachable(t *testing.T) {
	s := getStack(t)
	jwksPort, err := cognitolocal.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	jwksURL := fmt.Sprintf("http://127.0.0.1:%d/jwks.json", jwksPort)
	ls := newLoginSite(t, s, 0, strings.Replace(claimsJWKSCaddyfile, "\tcognito_bearer {", "\tcognito_health /healthz\n\tcognito_bearer {", 1), map[string]string{
		"@ISSUER@": s.issuer, "@JWKS_URL@": jwksURL, "@CLIENT_ID@": s.web.ClientID,
	})
	admin := "http://" + ls.caddy.AdminAddr + "/cognito/health"
	for _, url := range []string{admin, ls.base + "/healthz"} {
		code, rep, body := getHealth(t, url)
		if code != 503 || rep.Status != "unavailable" || len(rep.Failing) != 1 || rep.Failing[0] != "pool main: no signing keys" ||
			rep.Pools["main"].Keys != 0 || rep.Store != "unused" {
			t.Errorf("GET %s with the JWKS unreachable: HTTP %d %s; want 503 naming pool main", url, code, body)
		}
	}

	// A real token meanwhile gets 503 and counts as unavailable.
	unavailable := series("requests_total", "handler", "bearer", "result", "deny", "reason", "unavailable")
	m := scrape(t, "http://"+ls.caddy.AdminAddr+"/metrics")
	before := m[unavailable]
	req, _ := http.NewRequest(http.MethodGet, ls.base+"/api/things", nil)
	req.Header.Set("Authorization", "Bearer "+s.login(t, s.web.ClientID, alice).AccessToken)
	if r := newWebClient(t).do(req); r.Status != http.StatusServiceUnavailable {
		t.Errorf("a token while the JWKS is unreachable: want 503, got %s", r)
	}

	// The failed fetches are counted, and the pool holds no keys.
	m = scrape(t, "http://"+ls.caddy.AdminAddr+"/metrics")
	if got := m[unavailable] - before; got != 1 {
		t.Errorf("%s grew by %v, want 1", unavailable, got)
	}
	if m[series("jwks_fetches_total", "pool", "main", "result", "error")] < 1 || m[series("jwks_keys", "pool", "main")] != 0 ||
		m[series("jwks_fetches_total", "pool", "main", "result", "ok")] != 0 {
		t.Errorf("with the JWKS unreachable: fetches error %v ok %v, keys %v; want ≥1, 0, 0",
			m[series("jwks_fetches_total", "pool", "main", "result", "error")],
			m[series("jwks_fetches_total", "pool", "main", "result", "ok")], m[series("jwks_keys", "pool", "main")])
	}

	// Serve cognito-local's key set at the jwks_url: the key set's retry
	// (5s, doubling) picks it up, and health turns 200.
	jwks := newJWKSServer(t, jwksPort, fetchBody(t, s.cl.JWKSURL(s.pool.ID)))
	defer jwks.close()
	pollUntil(t, 90*time.Second, "health to turn 200 once the JWKS answers", func() bool {
		code, rep, body := getHealth(t, admin)
		if code == 200 && (rep.Status != "ok" || rep.Pools["main"].Keys < 1) {
			t.Fatalf("healthy answer %s", body)
		}
		return code == 200
	})
	if code, _, body := getHealth(t, ls.base+"/healthz"); code != 200 {
		t.Errorf("cognito_health after the JWKS came back: %d %s", code, body)
	}
	m = scrape(t, "http://"+ls.caddy.AdminAddr+"/metrics")
	if m[series("jwks_fetches_total", "pool", "main", "result", "ok")] < 1 || m[series("jwks_keys", "pool", "main")] < 1 {
		t.Errorf("once the JWKS answers: fetches ok %v, keys %v", m[series("jwks_fetches_total", "pool", "main", "result", "ok")], m[series("jwks_keys", "pool", "main")])
	}
}
