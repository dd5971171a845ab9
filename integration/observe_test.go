package integration

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-cognito/caddy-cognito/integration/internal/cognitolocal"
)

// Metrics, health and security events of one Caddy of its own (so that the
// counts are this test's alone): cognito_bearer on /api/*, cognito_login
// everywhere else, Caddy's metrics handler on /site-metrics and
// cognito_health on /healthz.

const observeCaddyfile = `{
	admin {$CADDY_ADMIN}
	auto_https off
	cognito {
		store sqlite @DB@
		pool main {
			issuer @ISSUER@
			client_id @CLIENT_ID@ @BEARER_CLIENT@
			client_secret @CLIENT_SECRET@
			domain @DOMAIN@
		}
	}
}

http://127.0.0.1:@PORT@ {
	cognito_health /healthz
	handle /site-metrics {
		metrics
	}
	handle /api/admin/* {
		cognito_bearer {
			realm test-api
			require group nobody-has-this-group
		}
		reverse_proxy @UPSTREAM@
	}
	handle /api/* {
		cognito_bearer {
			realm test-api
		}
		reverse_proxy @UPSTREAM@
	}
	handle {
		cognito_login {
			secret @SECRET@
			admit any
		}
		reverse_proxy @UPSTREAM@
	}
	@MARK@
}
`

// newObserveSite starts a Caddy on observeCaddyfile with a new app client
// of the shared pool for sign-in.
func newObserveSite(t *testing.T) *loginSite {
	t.Helper()
	s := getStack(t)
	cognitolocal.RequirePatched(t)
	port, err := cognitolocal.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	client := newAppClient(t, s, "observe-", fmt.Sprintf("http://127.0.0.1:%d", port))
	ls := newLoginSite(t, s, port, observeCaddyfile, map[string]string{
		"@ISSUER@": s.issuer, "@CLIENT_ID@": client.ClientID, "@CLIENT_SECRET@": client.ClientSecret,
		"@BEARER_CLIENT@": s.web.ClientID, "@DOMAIN@": s.cl.URL, "@MARK@": "",
	})
	ls.client, ls.issuer = client, s.issuer
	return ls
}

// seriesLine is one sample of the Prometheus text format.
var seriesLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$`)

// scrape reads a /metrics page into series → value; a series is written
// name{label="value",…} with the labels sorted.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url) //nolint:gosec // G107: the test's own loopback Caddy
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }() // read-only
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: HTTP %d %s", url, resp.StatusCode, body)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		m := seriesLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("unreadable metrics line %q", line)
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		var labels []string
		if m[2] != "" {
			labels = strings.Split(m[2], ",")
			sort.Strings(labels)
		}
		out[m[1]+"{"+strings.Join(labels, ",")+"}"] = v
	}
	return out
}

// series names a sample: series("requests_total", "handler", "bearer", …)
// is caddy_cognito_requests_total{handler="bearer",…}.
func series(name string, kv ...string) string {
	var labels []string
	for i := 0; i+1 < len(kv); i += 2 {
		labels = append(labels, kv[i]+`="`+kv[i+1]+`"`)
	}
	sort.Strings(labels)
	return "caddy_cognito_" + name + "{" + strings.Join(labels, ",") + "}"
}

// wantIncrements compares two scrapes: each series of want grew by
// exactly its value (absent before counts as 0).
func wantIncrements(t *testing.T, what string, before, after map[string]float64, want map[string]float64) {
	t.Helper()
	for s, d := range want {
		if got := after[s] - before[s]; got != d {
			t.Errorf("%s: %s grew by %v, want %v", what, s, got, d)
		}
	}
}

func bearerReq(name, reason string) string {
	result := "deny"
	if reason == "none" {
		result = "allow"
	}
	return series("requests_total", "handler", name, "result", result, "reason", reason)
}

func TestObserveMetricsCountRequests(t *testing.T) {
	ls := newObserveSite(t)
	s := ls.s
	adminMetrics := "http://" + ls.caddy.AdminAddr + "/metrics"

	// Bearer: two allowed requests with one token (a cache miss, then a
	// hit), no token, a tampered one, an expired one, and an unmet
	// requirement (a third look at the cached token).
	tok := s.login(t, s.web.ClientID, alice).AccessToken
	m := *s.minter
	m.Now = func() time.Time { return time.Now().Add(-2 * time.Hour) }
	expired := m.MustSign(m.AccessClaims(s.issuer, s.web.ClientID, s.users[alice].Sub, alice))
	get := func(path, token string) result {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, ls.base+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		return newWebClient(t).do(req)
	}
	before := scrape(t, adminMetrics)
	wantUpstream(t, get("/api/a", tok))
	wantUpstream(t, get("/api/b", tok))
	wantDenied(t, get("/api/c", ""), 401, "")
	wantDenied(t, get("/api/d", cognitolocal.Tamper(tok)), 401, "invalid_token")
	wantDenied(t, get("/api/e", expired), 401, "invalid_token")
	wantDenied(t, get("/api/admin/f", tok), 403, "insufficient_scope")
	afterBearer := scrape(t, adminMetrics)
	wantIncrements(t, "bearer", before, afterBearer, map[string]float64{
		bearerReq("bearer", "none"):                                       2,
		bearerReq("bearer", "no_token"):                                   1,
		bearerReq("bearer", "invalid_token"):                              1,
		bearerReq("bearer", "expired"):                                    1,
		bearerReq("bearer", "insufficient_scope"):                         1,
		bearerReq("bearer", "unavailable"):                                0,
		series("cache_lookups_total", "cache", "token", "result", "hit"):  2,
		series("cache_lookups_total", "cache", "token", "result", "miss"): 3,
	})

	// The key set: as many keys as cognito-local publishes, fetched.
	keys := jwksKeyCount(t, s.issuer+"/.well-known/jwks.json")
	if got := afterBearer[series("jwks_keys", "pool", "main")]; got != float64(keys) || keys == 0 {
		t.Errorf("jwks_keys = %v, want %d", got, keys)
	}
	if afterBearer[series("jwks_fetches_total", "pool", "main", "result", "ok")] < 1 {
		t.Errorf("no successful JWKS fetch counted: %v", afterBearer[series("jwks_fetches_total", "pool", "main", "result", "ok")])
	}

	// Login: an API call without a session, a first sign-in (admit any),
	// two requests of the session (a store read, then a cache hit), a
	// second sign-in of the same identity (now linked) in another client.
	c := newWebClient(t)
	wantUnauthenticatedJSON(t, c.api(http.MethodGet, ls.base+"/app/x", nil), "/app/x")
	ls.signInPlain(t, c, "/app/", alice).wantSignedIn(t, "/app/")
	wantUpstream(t, c.navigate(ls.base+"/app/1"))
	wantUpstream(t, c.navigate(ls.base+"/app/2"))
	c2 := newWebClient(t)
	ls.signInPlain(t, c2, "/app/", alice).wantSignedIn(t, "/app/")
	afterLogin := scrape(t, adminMetrics)
	wantIncrements(t, "login", afterBearer, afterLogin, map[string]float64{
		bearerReq("login", "no_session"):                                             1,
		bearerReq("login", "none"):                                                   2,
		series("signins_total", "pool", "main", "result", "ok", "rule", "any"):       1,
		series("signins_total", "pool", "main", "result", "ok", "rule", "linked"):    1,
		series("signins_total", "pool", "main", "result", "refused", "rule", "none"): 0,
		series("cache_lookups_total", "cache", "session", "result", "miss"):          1,
		series("cache_lookups_total", "cache", "session", "result", "hit"):           1,
		// each sign-in verifies its access token for the scopes: a miss
		series("cache_lookups_total", "cache", "token", "result", "miss"):                  2,
		series("requests_total", "handler", "bearer", "result", "allow", "reason", "none"): 0,
	})
	for _, op := range []string{"read", "write"} {
		name := "caddy_cognito_store_seconds_count{op=\"" + op + "\"}"
		if afterLogin[name] <= afterBearer[name] {
			t.Errorf("%s did not grow over the sign-ins: %v → %v", name, afterBearer[name], afterLogin[name])
		}
	}

	// Caddy's metrics handler serves the same registry.
	site := scrape(t, ls.base+"/site-metrics")
	if got, want := site[bearerReq("login", "none")], afterLogin[bearerReq("login", "none")]; got != want {
		t.Errorf("the metrics handler says %v, the admin endpoint %v", got, want)
	}
	for s := range site {
		if strings.HasPrefix(s, "caddy_cognito_") && strings.Contains(s, "/") && !strings.Contains(s, "jwks") {
			t.Errorf("a label holds a path: %s", s)
		}
	}
}

// jwksKeyCount counts the keys at url.
func jwksKeyCount(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url) //nolint:gosec // G107: cognito-local on loopback
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }() // read-only
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	return len(doc.Keys)
}

// logEntry is one line of Caddy's JSON log.
type logEntry map[string]any

// logEntries parses Caddy's output (JSON lines; anything else is skipped).
func logEntries(out string) []logEntry {
	var entries []logEntry
	for _, line := range strings.Split(out, "\n") {
		var e logEntry
		if strings.HasPrefix(line, "{") && json.Unmarshal([]byte(line), &e) == nil {
			entries = append(entries, e)
		}
	}
	return entries
}

// findEvent is the first Info entry with message msg whose fields hold
// every pair of kv.
func findEvent(entries []logEntry, msg string, kv ...string) logEntry {
	for _, e := range entries {
		if e["msg"] != msg || e["level"] != "info" {
			continue
		}
		ok := true
		for i := 0; i+1 < len(kv); i += 2 {
			if fmt.Sprint(e[kv[i]]) != kv[i+1] {
				ok = false
			}
		}
		if ok {
			return e
		}
	}
	return nil
}

var jwtShaped = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.`)

// TestObserveSecurityEventsAndReload: sign-in (with its admission rule),
// sign-out, sign-out everywhere and a refused sign-in are Info events
// naming the local user, and the log holds no token or session id. Then a
// reload: /metrics still answers, the counts carry over, and nothing is
// logged as an error.
func TestObserveSecurityEventsAndReload(t *testing.T) {
	ls := newObserveSite(t)
	adminURL := "http://" + ls.caddy.AdminAddr
	admin := func(method, path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, adminURL+path, strings.NewReader("{}"))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }() // read-only
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}

	// First sign-in (admit any), then /auth/me for the local user id.
	c := newWebClient(t)
	sid1 := ls.signInPlain(t, c, "/", alice).wantSignedIn(t, "/")
	var me struct {
		User struct {
			ID string `json:"id"`
		} `json:"user"`
	}
	if r := c.api(http.MethodGet, ls.base+"/auth/me", nil); r.Status != 200 || json.Unmarshal(r.Body, &me) != nil || me.User.ID == "" {
		t.Fatalf("/auth/me: %s", r)
	}
	uid := me.User.ID
	ls.logoutPlain(t, c, "")
	c2 := newWebClient(t)
	sid2 := ls.signInPlain(t, c2, "/", alice).wantSignedIn(t, "/")
	if code, body := admin(http.MethodDelete, "/cognito/users/"+uid+"/sessions"); code != 200 || !strings.Contains(body, `"ended": 1`) {
		t.Fatalf("signing out everywhere: %d %s", code, body)
	}
	if code, body := admin(http.MethodPost, "/cognito/users/"+uid+"/disable"); code != 200 {
		t.Fatalf("disabling the user: %d %s", code, body)
	}
	p := ls.signInPlain(t, newWebClient(t), "/", alice)
	if p.answer.Status != http.StatusForbidden {
		t.Fatalf("a disabled user's sign-in: want 403, got %s", p.answer)
	}

	waitOutput(t, ls, 10*time.Second, "the refused sign-in", func(out string) bool { return strings.Contains(out, "sign-in refused") })
	entries := logEntries(ls.caddy.Output())
	for _, want := range [][]string{
		{"first sign-in admitted", "rule", "any", "user", uid},
		{"signed in", "user", uid, "rule", "any"},
		{"signed out", "user", uid},
		{"signed in", "user", uid, "rule", "linked"},
		{"signed out everywhere", "user", uid, "sessions", "1"},
		{"sign-in refused", "reason", "local user disabled"},
	} {
		if findEvent(entries, want[0], want[1:]...) == nil {
			t.Errorf("no Info event %q with %v in Caddy's log", want[0], want[1:])
		}
	}
	out := ls.caddy.Output()
	for _, secret := range []string{sid1, sid2} {
		if strings.Contains(out, secret) {
			t.Errorf("a session id is in Caddy's log")
		}
	}
	if m := jwtShaped.FindString(out); m != "" {
		t.Errorf("something JWT-shaped is in Caddy's log: %.40s…", m)
	}

	// Reload with a visible change; the metrics survive it.
	before := scrape(t, adminURL+"/metrics")
	errorsBefore := countErrors(logEntries(ls.caddy.Output()))
	text, err := os.ReadFile(ls.file)
	if err != nil {
		t.Fatal(err)
	}
	reloaded := strings.Replace(string(text), "\thandle /site-metrics {", "\thandle /reloaded {\n\t\trespond \"reloaded\" 200\n\t}\n\thandle /site-metrics {", 1)
	req, _ := http.NewRequest(http.MethodPost, adminURL+"/load", strings.NewReader(reloaded))
	req.Header.Set("Content-Type", "text/caddyfile")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close() // read-only
	if resp.StatusCode != 200 {
		t.Fatalf("POST /load: HTTP %d %s", resp.StatusCode, body)
	}
	if r := newWebClient(t).navigate(ls.base + "/reloaded"); r.Status != 200 || string(r.Body) != "reloaded" {
		t.Fatalf("the reloaded config does not answer: %s", r)
	}
	after := scrape(t, adminURL+"/metrics")
	for _, s := range []string{
		series("signins_total", "pool", "main", "result", "ok", "rule", "any"),
		series("signins_total", "pool", "main", "result", "refused", "rule", "none"),
	} {
		if after[s] != before[s] || after[s] < 1 {
			t.Errorf("after the reload %s = %v, before %v: counts must carry over", s, after[s], before[s])
		}
	}
	if after[series("jwks_keys", "pool", "main")] < 1 {
		t.Errorf("after the reload jwks_keys = %v", after[series("jwks_keys", "pool", "main")])
	}
	if site := scrape(t, ls.base+"/site-metrics"); site[series("signins_total", "pool", "main", "result", "ok", "rule", "any")] != after[series("signins_total", "pool", "main", "result", "ok", "rule", "any")] {
		t.Errorf("the metrics handler and the admin endpoint disagree after the reload")
	}
	if n := countErrors(logEntries(ls.caddy.Output())); n != errorsBefore {
		t.Errorf("the reload logged %d errors:\n%s", n-errorsBefore, ls.caddy.Output())
	}
}

func countErrors(entries []logEntry) int {
	n := 0
	for _, e := range entries {
		if e["level"] == "error" || e["level"] == "fatal" {
			n++
		}
	}
	return n
}
