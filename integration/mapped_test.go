package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-cognito/caddy-cognito/integration/internal/caddyproc"
	"github.com/caddy-cognito/caddy-cognito/integration/internal/cognitolocal"
)

// The identity store end to end: the xcaddy-built binary runs a site with
// `users mapped` against the shared cognito-local pool, and an operator
// manages users with `caddy cognito …` (the same binary, another process)
// and with the admin API while it runs.

const mappedMessage = "Ask an administrator for access."

// mappedCaddyfile is the site under test. %[1]s is the store path, %[2]s the
// pool's issuer, %[3]s/%[4]s the configured app clients, %[5]d the site port,
// %[6]s the upstream and %[7]s the unmapped message. The admin address comes
// from {$CADDY_ADMIN}, which caddyproc.Start sets (and the CLI gets too).
const mappedCaddyfile = `{
	admin {$CADDY_ADMIN}
	auto_https off
	cognito {
		store sqlite %[1]s
		pool main {
			issuer %[2]s
			client_id %[3]s %[4]s
			leeway 5s
		}
	}
}

http://127.0.0.1:%[5]d {
	cognito_bearer /admin/* {
		users mapped
		require role admin
	}
	cognito_bearer {
		users mapped
		unmapped_message "%[7]s"
	}
	reverse_proxy %[6]s
}
`

// carol is a cognito-local user of the shared pool that only these tests
// use, so that linking her in this site's store says nothing about others.
const carol = "carol.mapped@example.com"

type mappedSite struct {
	s        *stack
	site     *stack // s, but with base pointing at this site's Caddy
	bin      string
	dir      string // the test's temporary directory
	db       string
	file     string // the Caddyfile the CLI reads
	port     int
	caddy    *caddyproc.Caddy
	cliHome  string
	userSub  string
	userName string // cognito username of carol
}

func newMappedSite(t *testing.T) *mappedSite {
	t.Helper()
	s := getStack(t)
	m := &mappedSite{s: s, bin: needCaddy(t), dir: t.TempDir()}
	m.db = filepath.Join(m.dir, "cognito.db")
	m.file = filepath.Join(m.dir, "Caddyfile")
	m.cliHome = filepath.Join(m.dir, "cli-home")
	if err := os.MkdirAll(m.cliHome, 0o750); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	seeded, err := cognitolocal.Seed(ctx, s.cl.Client, cognitolocal.SeedSpec{
		PoolName: s.pool.Name, ClientName: s.web.ClientName,
		Users: []cognitolocal.SeedUser{{Email: carol, Password: password}},
	})
	if err != nil {
		t.Fatalf("seeding %s: %v", carol, err)
	}
	if seeded.Pool.ID != s.pool.ID || seeded.Client.ClientID != s.web.ClientID {
		t.Fatalf("seeding reused pool %s/client %s, want %s/%s", seeded.Pool.ID, seeded.Client.ClientID, s.pool.ID, s.web.ClientID)
	}
	m.userSub, m.userName = seeded.Users[carol].Sub, seeded.Users[carol].Username
	if m.userSub == "" {
		t.Fatalf("no sub for %s: %+v", carol, seeded.Users[carol])
	}
	if m.port, err = cognitolocal.FreePort(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(m.file, []byte(m.caddyfile(mappedMessage)), 0o600); err != nil {
		t.Fatal(err)
	}
	m.site = &stack{cl: s.cl, minter: s.minter, pool: s.pool, web: s.web, machine: s.machine, stranger: s.stranger,
		users: s.users, issuer: s.issuer, upstream: s.upstream, base: fmt.Sprintf("http://127.0.0.1:%d", m.port)}
	m.start(t)
	t.Cleanup(func() {
		if m.caddy == nil {
			return
		}
		if t.Failed() {
			out := m.caddy.Output()
			if len(out) > 6000 {
				out = "…" + out[len(out)-6000:]
			}
			t.Logf("the mapped site's caddy printed:\n%s", out)
		}
		m.caddy.Stop()
	})
	return m
}

func (m *mappedSite) caddyfile(message string) string {
	return fmt.Sprintf(mappedCaddyfile, m.db, m.s.issuer, m.s.web.ClientID, m.s.machine.ClientID, m.port, m.s.upstream.URL, message)
}

// start runs a new caddy process on the Caddyfile (and the same store).
func (m *mappedSite) start(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := caddyproc.Start(ctx, m.bin, m.dir, m.caddyfile(mappedMessage))
	if err != nil {
		t.Fatalf("starting caddy with the identity store: %v", err)
	}
	m.caddy = c
	// The admin endpoint is up; wait until the site answers too.
	if err := cognitolocal.WaitHTTP(ctx, m.site.base+"/"); err != nil {
		t.Fatal(err)
	}
}

// mappedRun is what one `caddy cognito …` process did.
type mappedRun struct {
	args           []string
	code           int
	stdout, stderr string
}

func (r mappedRun) String() string {
	return fmt.Sprintf("caddy %s\nexit %d\nstdout: %s\nstderr: %s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// cli runs `caddy cognito <args…>` as a separate process, the way an
// operator would. Unless args name --db, the store is found from the site's
// Caddyfile (--config … --adapter caddyfile).
func (m *mappedSite) cli(t *testing.T, args ...string) mappedRun {
	t.Helper()
	full := append([]string{"cognito"}, args...)
	useDB := false
	for _, a := range args {
		if a == "--db" || strings.HasPrefix(a, "--db=") {
			useDB = true
		}
	}
	if !useDB {
		full = append(full, "--config", m.file, "--adapter", "caddyfile")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, m.bin, full...) //nolint:gosec // G204: the caddy binary the tests built
	cmd.Dir = m.dir
	cmd.Env = append(os.Environ(), "CADDY_ADMIN="+m.caddy.AdminAddr,
		"HOME="+m.cliHome, "XDG_DATA_HOME="+filepath.Join(m.cliHome, "data"), "XDG_CONFIG_HOME="+filepath.Join(m.cliHome, "config"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := mappedRun{args: full, stdout: stdout.String(), stderr: stderr.String()}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr):
		r.code = exitErr.ExitCode()
	default:
		t.Fatalf("running %v: %v", full, err)
	}
	return r
}

// cliOK runs the CLI and requires exit code 0.
func (m *mappedSite) cliOK(t *testing.T, args ...string) mappedRun {
	t.Helper()
	r := m.cli(t, args...)
	if r.code != 0 {
		t.Fatalf("want exit 0:\n%s", r)
	}
	return r
}

// admin sends one request to the running Caddy's admin API.
func (m *mappedSite) admin(t *testing.T, method, path string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://"+m.caddy.AdminAddr+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }() // read-only
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// mappedUser is the JSON of a user (CLI --json and the admin API).
type mappedUser struct {
	ID         string   `json:"id"`
	Username   string   `json:"username"`
	Email      string   `json:"email"`
	Active     bool     `json:"active"`
	Roles      []string `json:"roles"`
	Identities []struct {
		Issuer string `json:"issuer"`
		Sub    string `json:"sub"`
		UserID string `json:"user_id"`
	} `json:"identities"`
}

type mappedServiceAccount struct {
	Issuer   string `json:"issuer"`
	ClientID string `json:"client_id"`
	UserID   string `json:"user_id"`
	Username string `json:"username"`
	Active   bool   `json:"active"`
}

func mappedJSON(t *testing.T, what string, data []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %q is not the expected JSON: %v", what, data, err)
	}
}

// wantRefused checks a refusal by the plugin: the status, a JSON error body
// (whose description contains desc, if given), and no upstream.
// refusedSoonAfter: a change another process committed before committed
// is seen within 5 ms (the plugin's changeCheckAge), so every request sent
// later than that must be refused (403 with desc).
func refusedSoonAfter(t *testing.T, site *stack, tok string, committed time.Time, desc string) {
	t.Helper()
	for {
		sent := time.Now()
		res := site.do(t, "/", tok)
		if res.Upstream == nil {
			wantRefused(t, res, 403, desc)
			return
		}
		if sent.Sub(committed) > 5*time.Millisecond {
			t.Fatalf("a request sent %v after another process's change still got through", sent.Sub(committed))
		}
	}
}

func wantRefused(t *testing.T, r result, status int, desc string) {
	t.Helper()
	if r.Status != status || r.Upstream != nil {
		t.Fatalf("want %d from caddy-cognito, got %s (reached upstream: %v)", status, r, r.Upstream != nil)
	}
	var body struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil || body.Error == "" {
		t.Fatalf("body %q is not a JSON {error, error_description}: %v", r.Body, err)
	}
	if desc != "" && !strings.Contains(body.Description, desc) {
		t.Fatalf("error_description = %q, want it to contain %q", body.Description, desc)
	}
}

func TestMappedIdentityStore(t *testing.T) {
	m := newMappedSite(t)
	site := m.site
	tok := site.login(t, site.web.ClientID, carol).AccessToken
	if c, err := cognitolocal.Payload(tok); err != nil || c["sub"] != m.userSub {
		t.Fatalf("carol's access token: sub %v (err %v), want %s", c["sub"], err, m.userSub)
	}
	machineTok := site.minter.MustSign(site.minter.ClientCredentialsClaims(site.issuer, site.machine.ClientID, "reports/read"))
	var userID string

	step := func(name string, f func(t *testing.T)) {
		if !t.Run(name, f) {
			t.FailNow() // every step builds on the one before
		}
	}

	step("1 unknown user is refused with the configured message", func(t *testing.T) {
		wantRefused(t, site.do(t, "/", tok), 403, mappedMessage)
		wantRefused(t, site.do(t, "/reports/today", tok), 403, mappedMessage)
		// No token at all is still a 401, not the unmapped message.
		wantRefused(t, site.do(t, "/", ""), 401, "")
	})

	step("2 operator adds and links the user with the CLI", func(t *testing.T) {
		r := m.cliOK(t, "users", "add", "--username", "carol", "--email", carol, "--role", "editor")
		if !strings.Contains(r.stdout, "carol") || !strings.Contains(r.stdout, "editor") || !strings.Contains(r.stdout, "active") {
			t.Errorf("users add printed %q, want the user, her role and 'active'", r.stdout)
		}
		r = m.cliOK(t, "users", "link", "carol", "--sub", m.userSub, "--pool", "main")
		if !strings.Contains(r.stdout, "carol") || !strings.Contains(r.stdout, m.userSub) || !strings.Contains(r.stdout, site.issuer) {
			t.Errorf("users link printed %q, want the user and the linked identity (%s %s)", r.stdout, site.issuer, m.userSub)
		}
		var u mappedUser
		mappedJSON(t, "users show --json", []byte(m.cliOK(t, "users", "show", carol, "--json").stdout), &u)
		if !strings.HasPrefix(u.ID, "u_") || u.Username != "carol" || !u.Active || strings.Join(u.Roles, ",") != "editor" {
			t.Errorf("users show --json = %+v", u)
		}
		if len(u.Identities) != 1 || u.Identities[0].Sub != m.userSub || u.Identities[0].Issuer != site.issuer || u.Identities[0].UserID != u.ID {
			t.Errorf("users show --json identities = %+v, want one: %s %s", u.Identities, site.issuer, m.userSub)
		}
		userID = u.ID

		h := wantUpstream(t, site.do(t, "/", tok))
		if got := one(t, h, "x-auth-user"); got != userID {
			t.Errorf("X-Auth-User = %q, want the local user id %q", got, userID)
		}
		if got := one(t, h, "x-auth-roles"); got != "editor" {
			t.Errorf("X-Auth-Roles = %q, want editor", got)
		}
		if got := one(t, h, "x-auth-sub"); got != m.userSub {
			t.Errorf("X-Auth-Sub = %q, want the Cognito sub %q", got, m.userSub)
		}
		if got := one(t, h, "x-auth-username"); got != m.userName {
			t.Errorf("X-Auth-Username = %q, want the Cognito username %q", got, m.userName)
		}
		// A spoofed roles header does not survive.
		h = wantUpstream(t, site.do(t, "/", tok, "X-Auth-Roles", "admin"))
		if got := one(t, h, "x-auth-roles"); got != "editor" {
			t.Errorf("with a spoofed X-Auth-Roles, upstream saw %q", got)
		}
	})

	step("3 admin role granted through the admin API works on the next request", func(t *testing.T) {
		wantRefused(t, site.do(t, "/admin/panel", tok), 403, "")
		status, body := m.admin(t, "POST", "/cognito/users/"+userID+"/roles", map[string]any{"roles": []string{"admin"}})
		if status != 200 {
			t.Fatalf("grant admin: HTTP %d %s", status, body)
		}
		var u mappedUser
		mappedJSON(t, "grant answer", body, &u)
		if strings.Join(u.Roles, ",") != "admin,editor" {
			t.Errorf("grant answered roles %q", u.Roles)
		}
		h := wantUpstream(t, site.do(t, "/admin/panel", tok))
		if got := one(t, h, "x-auth-roles"); got != "admin,editor" {
			t.Errorf("X-Auth-Roles = %q, want admin,editor", got)
		}
		if got := one(t, h, "x-auth-user"); got != userID {
			t.Errorf("X-Auth-User = %q, want %q", got, userID)
		}
	})

	step("4 disabled by the CLI in another process: refused from 5 ms after the change on", func(t *testing.T) {
		wantUpstream(t, site.do(t, "/", tok)) // warm every cache
		wantUpstream(t, site.do(t, "/admin/panel", tok))
		r := m.cliOK(t, "users", "disable", "carol")
		committed := time.Now() // the CLI committed before it exited
		if !strings.Contains(r.stdout, "carol") || !strings.Contains(r.stdout, "disabled") {
			t.Errorf("users disable printed %q", r.stdout)
		}
		refusedSoonAfter(t, site, tok, committed, mappedMessage)
		// The /admin/* handler has no unmapped_message of its own.
		wantRefused(t, site.do(t, "/admin/panel", tok), 403, "no active account on this site")
		status, body := m.admin(t, "POST", "/cognito/users/carol/enable", nil)
		if status != 200 {
			t.Fatalf("enable: HTTP %d %s", status, body)
		}
		var u mappedUser
		mappedJSON(t, "enable answer", body, &u)
		if !u.Active {
			t.Errorf("enable answered %+v", u)
		}
		wantUpstream(t, site.do(t, "/", tok))
		wantUpstream(t, site.do(t, "/admin/panel", tok))
	})

	step("5 client-credentials token maps through its service account", func(t *testing.T) {
		wantRefused(t, site.do(t, "/", machineTok), 403, mappedMessage)
		wantRefused(t, site.do(t, "/admin/x", machineTok), 403, "")
		r := m.cliOK(t, "service-accounts", "add", "--client-id", site.machine.ClientID, "--pool", "main", "--role", "admin")
		if !strings.Contains(r.stdout, site.machine.ClientID) {
			t.Errorf("service-accounts add printed %q, want the client id", r.stdout)
		}
		h := wantUpstream(t, site.do(t, "/admin/x", machineTok))
		if got := one(t, h, "x-auth-roles"); got != "admin" {
			t.Errorf("X-Auth-Roles = %q, want admin", got)
		}
		if got := one(t, h, "x-auth-sub"); got != site.machine.ClientID {
			t.Errorf("X-Auth-Sub = %q, want the client id", got)
		}
		saUser := one(t, h, "x-auth-user")
		if !strings.HasPrefix(saUser, "u_") || saUser == userID {
			t.Errorf("X-Auth-User = %q, want the service account's own local user", saUser)
		}
		if got := decodeList(t, one(t, h, "x-auth-scopes")); strings.Join(got, " ") != "reports/read" {
			t.Errorf("X-Auth-Scopes = %q", got)
		}
		var sas []mappedServiceAccount
		mappedJSON(t, "service-accounts list --json", []byte(m.cliOK(t, "service-accounts", "list", "--json").stdout), &sas)
		if len(sas) != 1 || sas[0].ClientID != site.machine.ClientID || sas[0].Issuer != site.issuer ||
			sas[0].UserID != saUser || !sas[0].Active || sas[0].Username != "service:"+site.machine.ClientID {
			t.Errorf("service-accounts list --json = %+v", sas)
		}
		// The user token of the same app client still maps to carol, not
		// to the service account.
		h = wantUpstream(t, site.do(t, "/", tok))
		if got := one(t, h, "x-auth-user"); got != userID {
			t.Errorf("carol's token: X-Auth-User = %q, want %q", got, userID)
		}
	})

	step("6 CLI and admin API error paths", func(t *testing.T) {
		if r := m.cli(t, "users", "show", "nobody"); r.code != 3 || r.stdout != "" || strings.TrimSpace(r.stderr) == "" {
			t.Errorf("users show nobody: want exit 3 and a message on stderr:\n%s", r)
		}
		if r := m.cli(t, "users", "add", "--username", "carol"); r.code != 4 {
			t.Errorf("duplicate username: want exit 4:\n%s", r)
		}
		if r := m.cli(t, "users", "add", "--username", "someone-else", "--email", strings.ToUpper(carol)); r.code != 4 {
			t.Errorf("duplicate email (other case): want exit 4:\n%s", r)
		}
		if r := m.cli(t, "users", "grant", "carol"); r.code != 2 || !strings.Contains(r.stderr, "usage") {
			t.Errorf("grant without roles: want exit 2 and the usage:\n%s", r)
		}
		blocker := filepath.Join(m.dir, "not-a-directory")
		if err := os.WriteFile(blocker, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		bad := filepath.Join(blocker, "cognito.db")
		r := m.cli(t, "users", "list", "--db", bad)
		if r.code == 0 || !strings.Contains(r.stderr, bad) {
			t.Errorf("--db below a regular file: want a non-zero exit and a message naming %s:\n%s", bad, r)
		} else {
			t.Logf("--db below a regular file: exit %d, %s", r.code, strings.TrimSpace(r.stderr))
		}
		status, body := m.admin(t, "GET", "/cognito/users/nobody", nil)
		var e struct {
			Error string `json:"error"`
		}
		if status != 404 || json.Unmarshal(body, &e) != nil || e.Error == "" {
			t.Errorf("GET /cognito/users/nobody: HTTP %d %s, want 404 with a JSON error", status, body)
		}
		// Nothing of the above changed carol.
		var u mappedUser
		mappedJSON(t, "users show --json", []byte(m.cliOK(t, "users", "show", "carol", "--json").stdout), &u)
		if !u.Active || strings.Join(u.Roles, ",") != "admin,editor" {
			t.Errorf("after the failed commands carol is %+v", u)
		}
	})

	step("7 the store outlives a config reload and a restart", func(t *testing.T) {
		// Reload through the admin API with a changed message, so that the
		// new config is visibly the one answering.
		const reloaded = "Reloaded: ask an administrator."
		if err := m.caddy.Load(context.Background(), m.caddyfile(reloaded)); err != nil {
			t.Fatal(err)
		}
		bobTok := site.login(t, site.web.ClientID, bob).AccessToken
		wantRefused(t, site.do(t, "/", bobTok), 403, reloaded)
		h := wantUpstream(t, site.do(t, "/admin/panel", tok))
		if got := one(t, h, "x-auth-user"); got != userID {
			t.Errorf("after reload X-Auth-User = %q, want %q", got, userID)
		}
		wantUpstream(t, site.do(t, "/admin/x", machineTok))
		// The store still takes changes after the reload (the old config's
		// handle was closed, the new one's was not).
		m.cliOK(t, "users", "disable", "carol")
		refusedSoonAfter(t, site, tok, time.Now(), reloaded)
		if status, body := m.admin(t, "POST", "/cognito/users/carol/enable", nil); status != 200 {
			t.Fatalf("enable after reload: HTTP %d %s", status, body)
		}
		wantUpstream(t, site.do(t, "/", tok))

		// A new caddy process on the same Caddyfile and store.
		m.caddy.Stop()
		m.caddy = nil
		m.start(t)
		h = wantUpstream(t, site.do(t, "/admin/panel", tok))
		if got := one(t, h, "x-auth-user"); got != userID {
			t.Errorf("after restart X-Auth-User = %q, want %q", got, userID)
		}
		if got := one(t, h, "x-auth-roles"); got != "admin,editor" {
			t.Errorf("after restart X-Auth-Roles = %q", got)
		}
		h = wantUpstream(t, site.do(t, "/admin/x", machineTok))
		if got := one(t, h, "x-auth-roles"); got != "admin" {
			t.Errorf("after restart the service account has roles %q", got)
		}
		wantRefused(t, site.do(t, "/", bobTok), 403, mappedMessage)
		// And the admin API of the new process sees the same store.
		status, out := m.admin(t, "GET", "/cognito/users/carol", nil)
		var u mappedUser
		mappedJSON(t, "GET /cognito/users/carol", out, &u)
		if status != 200 || u.ID != userID || len(u.Identities) != 1 {
			t.Errorf("after restart GET /cognito/users/carol: HTTP %d %+v", status, u)
		}
	})
}
