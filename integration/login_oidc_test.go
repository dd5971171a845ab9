package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/caddy-cognito/caddy-cognito/integration/internal/cognitolocal"
)

// cognito_login with a pool that has no hosted-UI domain: the endpoints come
// from OpenID discovery on the issuer, here oidc-provider (a certified
// OpenID provider, testenv/oidc-provider-server.js) with its devInteractions
// login and consent pages, short-lived tokens, refresh with and without
// rotation, and RP-initiated logout through its end_session page.

const loginOIDCCaddyfile = `{
	admin {$CADDY_ADMIN}
	auto_https off
	cognito {
		store sqlite @DB@
		pool op {
			issuer @ISSUER@
			jwks_url @ISSUER@/jwks
			client_id @CLIENT_ID@
			client_secret @CLIENT_SECRET@
		}
	}
}

http://127.0.0.1:@PORT@ {
	cognito_login {
		secret @SECRET@
		admit email_domain example.com
		scopes openid email profile offline_access
	}
	reverse_proxy @UPSTREAM@
}
`

// opEvent is one line of the provider's EVENT_LOG.
type opEvent struct {
	Event        string `json:"event"`
	GrantType    string `json:"grant_type"`
	ClientID     string `json:"client_id"`
	RefreshToken string `json:"refresh_token"` // hash of the refresh token presented
	Kind         string `json:"kind"`
	ID           string `json:"id"` // hash of a token's id
	Account      string `json:"account"`
	Error        string `json:"error"`
}

// opServer is a running oidc-provider.
type opServer struct {
	issuer string
	port   int
	args   []string // clientID, secret, siteBase
	env    []string
	cmd    *exec.Cmd
	done   chan struct{}
	stopMu sync.Once
	mu     sync.Mutex
	lines  []string
}

// startOP runs testenv/oidc-provider-server.js on port (0: a free one) for
// one confidential client with the given extra environment
// (ACCESS_TOKEN_TTL, ROTATE_REFRESH_TOKEN…).
func startOP(t *testing.T, port int, clientID, secret, siteBase string, env ...string) *opServer {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		cognitolocal.Missing(t, "node is not on PATH")
	}
	dir, err := cognitolocal.TestenvDir()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "oidc-provider")); err != nil {
		cognitolocal.Missing(t, "oidc-provider is not installed in testenv/node_modules")
	}
	if port == 0 {
		if port, err = cognitolocal.FreePort(); err != nil {
			t.Fatal(err)
		}
	}
	op := &opServer{issuer: fmt.Sprintf("http://127.0.0.1:%d", port), port: port, done: make(chan struct{}),
		args: []string{clientID, secret, siteBase}, env: env}
	op.cmd = exec.Command("node", filepath.Join(dir, "oidc-provider-server.js")) //nolint:gosec // G204: node running a script of testenv/
	op.cmd.Dir = dir
	op.cmd.Env = append(os.Environ(), fmt.Sprintf("PORT=%d", port), "CLIENT_ID="+clientID, "CLIENT_SECRET="+secret,
		"REDIRECT_URI="+siteBase+"/auth/callback", "POST_LOGOUT_REDIRECT_URI="+siteBase+"/auth/logout/done", "EVENT_LOG=1")
	op.cmd.Env = append(op.cmd.Env, env...)
	pr, pw := io.Pipe()
	op.cmd.Stdout, op.cmd.Stderr = pw, pw
	op.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := op.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			op.mu.Lock()
			op.lines = append(op.lines, sc.Text())
			op.mu.Unlock()
		}
	}()
	// How it ended shows in its output; Close of a pipe writer never fails.
	go func() { _ = op.cmd.Wait(); _ = pw.Close(); close(op.done) }()
	t.Cleanup(func() {
		op.stop()
		if t.Failed() {
			t.Logf("oidc-provider printed:\n%s", op.output())
		}
	})
	op.waitFor(t, 30*time.Second, "oidc-provider listening", func() bool {
		return strings.Contains(op.output(), "oidc-provider listening on "+op.issuer)
	})
	return op
}

// stop ends the provider (its process group) and waits for it.
func (op *opServer) stop() {
	op.stopMu.Do(func() {
		_ = syscall.Kill(-op.cmd.Process.Pid, syscall.SIGTERM) // the group may have exited already
		select {
		case <-op.done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-op.cmd.Process.Pid, syscall.SIGKILL) // as above
			<-op.done
		}
	})
}

// restart stops the provider and starts a fresh one with the same issuer,
// client and settings. Its grants lived in memory: every refresh token
// issued before is unknown to the new one.
func (op *opServer) restart(t *testing.T) *opServer {
	t.Helper()
	op.stop()
	return startOP(t, op.port, op.args[0], op.args[1], op.args[2], op.env...)
}

func (op *opServer) output() string {
	op.mu.Lock()
	defer op.mu.Unlock()
	return strings.Join(op.lines, "\n")
}

// events returns the provider's events so far.
func (op *opServer) events() []opEvent {
	op.mu.Lock()
	defer op.mu.Unlock()
	var out []opEvent
	for _, l := range op.lines {
		if rest, ok := strings.CutPrefix(l, "oidc-event "); ok {
			var e opEvent
			if json.Unmarshal([]byte(rest), &e) == nil {
				out = append(out, e)
			}
		}
	}
	return out
}

// refreshes returns the successful refresh_token grants so far.
func (op *opServer) refreshes() []opEvent {
	var out []opEvent
	for _, e := range op.events() {
		if e.Event == "grant.success" && e.GrantType == "refresh_token" {
			out = append(out, e)
		}
	}
	return out
}

func (op *opServer) count(event string) int {
	n := 0
	for _, e := range op.events() {
		if e.Event == event {
			n++
		}
	}
	return n
}

// waitFor polls cond until it holds or the deadline passes.
func (op *opServer) waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		select {
		case <-op.done:
			t.Fatalf("oidc-provider exited while waiting for %s:\n%s", what, op.output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %v", what, limit)
		}
		time.Sleep(100 * time.Millisecond) // poll interval
	}
}

// newOIDCLoginSite starts oidc-provider and a Caddy signing in with it.
func newOIDCLoginSite(t *testing.T, env ...string) (*loginSite, *opServer) {
	t.Helper()
	s := getStack(t)
	port, err := cognitolocal.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	clientID, secret := "caddy-"+randomHex(t, 4), randomHex(t, 24)
	op := startOP(t, 0, clientID, secret, base, env...)
	ls := newLoginSite(t, s, port, loginOIDCCaddyfile, map[string]string{
		"@ISSUER@": op.issuer, "@CLIENT_ID@": clientID, "@CLIENT_SECRET@": secret,
	})
	ls.issuer = op.issuer
	ls.client = cognitolocal.AppClient{ClientID: clientID, ClientSecret: secret}
	return ls, op
}

// opSignInSteps: open path, oidc-provider's login form (any login, any
// password), its consent page, and back at path.
func opSignInSteps(ls *loginSite, op *opServer, shots, path, login string) []browserStep {
	return []browserStep{
		{Name: "op login form", Goto: ls.base + path, WaitFor: `input[name="login"]`, Screenshot: filepath.Join(shots, "01-op-login.png")},
		{Name: "op consent", Fill: map[string]string{`input[name="login"]`: login, `input[name="password"]`: "anything at all"},
			Click: `button[type="submit"]`, WaitFor: `input[name="prompt"][value="consent"]`, Screenshot: filepath.Join(shots, "02-op-consent.png")},
		{Name: "signed in", Click: `button[type="submit"]`, WaitURL: ls.base + path, Screenshot: filepath.Join(shots, "03-signed-in.png")},
	}
}

func TestLoginOIDCProvider(t *testing.T) {
	for _, rotation := range []string{"always", "never"} {
		t.Run("refresh rotation "+rotation, func(t *testing.T) {
			// Access and ID tokens live 3 s, so the session outlives many of them.
			const ttl = 3 * time.Second
			ls, op := newOIDCLoginSite(t, "ACCESS_TOKEN_TTL=3", "ID_TOKEN_TTL=3", "ROTATE_REFRESH_TOKEN="+rotation)
			shots := artifactDir(t)
			login := "olga-" + randomHex(t, 3)
			email := login + "@example.com"

			rep := runBrowser(t, nil, opSignInSteps(ls, op, shots, "/app", login)...)
			loginForm, signedIn := rep[0], rep[2]
			if !strings.HasPrefix(loginForm.URL, op.issuer+"/interaction/") {
				t.Errorf("want oidc-provider's login page:\n%s", loginForm)
			}
			var authorize *url.URL
			for _, n := range loginForm.Navigations {
				if strings.HasPrefix(n.URL, op.issuer+"/auth?") {
					authorize, _ = url.Parse(n.URL)
				}
			}
			if authorize == nil {
				t.Fatalf("the browser never went to the discovered authorization endpoint %s/auth:\n%s", op.issuer, loginForm)
			}
			if q := authorize.Query(); q.Get("code_challenge_method") != "S256" || q.Get("nonce") == "" || q.Get("state") == "" ||
				q.Get("redirect_uri") != ls.base+"/auth/callback" {
				t.Errorf("authorization request %s", authorize)
			}
			u := ls.localUser(t, email)
			wantIdentityHeaders(t, echoOf(t, signedIn), u.ID, "", email, login, nil, nil)
			if len(u.Identities) != 1 || u.Identities[0].Issuer != op.issuer || u.Identities[0].Sub != login {
				t.Errorf("admitted local user %+v, want one identity %s %s", u, op.issuer, login)
			}
			c, ok := signedIn.cookie(loginSessionName)
			if !ok {
				t.Fatalf("no session cookie after sign-in: %+v", signedIn.Cookies)
			}
			if n := len(op.refreshes()); n != 0 {
				t.Fatalf("%d refreshes before any token expired", n)
			}

			// Keep using the session (plain net/http with the browser's
			// cookie) while tokens expire: every answer must be the
			// upstream's for this user, until the tokens of the sign-in
			// have long expired (two lifetimes) and the provider has seen
			// two refresh_token grants from Caddy.
			web := newWebClient(t)
			web.setCookie(ls.base, loginSessionName, c.Value)
			start := time.Now()
			deadline := start.Add(20*ttl + 20*time.Second)
			requests := 0
			for len(op.refreshes()) < 2 || time.Since(start) < 2*ttl {
				r := web.navigate(ls.base + "/app/poll")
				requests++
				if r.Upstream == nil {
					t.Fatalf("request %d, %v after sign-in (tokens live %v): the session stopped working: %s\nprovider events: %+v",
						requests, time.Since(start).Round(time.Millisecond), ttl, r, op.events())
				}
				wantIdentityHeaders(t, r.Upstream, u.ID, "", email, login, nil, nil)
				if time.Now().After(deadline) {
					t.Fatalf("after %d requests over %v the provider saw %d refreshes, want 2 (tokens live %v)", requests, time.Since(start), len(op.refreshes()), ttl)
				}
				time.Sleep(250 * time.Millisecond) // pace of a user clicking around
			}
			refs := op.refreshes()
			t.Logf("rotation %s: %d requests over %v, refreshes: %+v", rotation, requests, time.Since(start).Round(time.Millisecond), refs)
			for _, e := range refs {
				if e.ClientID != ls.client.ClientID {
					t.Errorf("refresh by client %q, want %q", e.ClientID, ls.client.ClientID)
				}
			}
			switch rotation {
			case "always":
				// The second refresh presented the token the first one issued.
				if refs[0].RefreshToken == refs[1].RefreshToken {
					t.Errorf("with rotation, two refreshes presented the same refresh token %s (the rotated one was not kept)", refs[0].RefreshToken)
				}
				if op.count("refresh_token.consumed") < 2 {
					t.Errorf("with rotation, the provider consumed %d refresh tokens", op.count("refresh_token.consumed"))
				}
			case "never":
				if refs[0].RefreshToken != refs[1].RefreshToken {
					t.Errorf("without rotation, the refreshes presented different tokens %s and %s", refs[0].RefreshToken, refs[1].RefreshToken)
				}
			}
			if op.count("grant.error") != 0 {
				t.Errorf("the provider refused grants: %+v", op.events())
			}
			// Still the same session (not a new sign-in behind the scenes).
			var me loginMe
			r := web.api(http.MethodGet, ls.base+"/auth/me", nil)
			if r.Status != 200 || json.Unmarshal(r.Body, &me) != nil {
				t.Fatalf("/auth/me after the refreshes: %s", r)
			}
			if me.User.ID != u.ID || me.Identity.Sub != login || me.Identity.Issuer != op.issuer || time.Since(me.Session.CreatedAt) < time.Since(start)-time.Second {
				t.Errorf("/auth/me after the refreshes: %+v", me)
			}

			if rotation != "always" {
				return
			}
			// RP-initiated logout through the provider's end_session page.
			rep = runBrowser(t, signedIn.Cookies,
				browserStep{Name: "logout confirmation", Goto: ls.base + "/auth/logout", Screenshot: filepath.Join(shots, "04-logout-confirm.png")},
				browserStep{Name: "op end session", Click: `form[method="post" i] button, form[method="post" i] input[type="submit"]`,
					WaitFor: `button[name="logout"]`, Screenshot: filepath.Join(shots, "05-op-end-session.png")},
				browserStep{Name: "signed out", Click: `button[name="logout"]`, WaitURL: ls.base + "/auth/logout/done", Screenshot: filepath.Join(shots, "06-signed-out.png")},
			)
			endSession := rep[1]
			var viaOP *url.URL
			for _, n := range endSession.Navigations {
				if strings.HasPrefix(n.URL, op.issuer+"/session/end?") {
					viaOP, _ = url.Parse(n.URL)
				}
			}
			if viaOP == nil {
				t.Fatalf("sign-out did not go to the discovered end_session_endpoint %s/session/end:\n%s", op.issuer, endSession)
			}
			if q := viaOP.Query(); q.Get("post_logout_redirect_uri") != ls.base+"/auth/logout/done" || q.Get("client_id") != ls.client.ClientID {
				t.Errorf("end_session request %s: want post_logout_redirect_uri %s/auth/logout/done and client_id", viaOP, ls.base)
			}
			done := rep[2]
			if done.Status != 200 || !strings.Contains(strings.ToLower(done.Text), "signed out") {
				t.Errorf("want the signed-out page:\n%s", done)
			}
			op.waitFor(t, 10*time.Second, "end_session.success", func() bool { return op.count("end_session.success") == 1 })
			if n := op.count("refresh_token.destroyed"); n < 1 {
				t.Errorf("the refresh token was not revoked at sign-out (refresh_token.destroyed %d times): %+v", n, op.events())
			}
			old := newWebClient(t)
			old.setCookie(ls.base, loginSessionName, c.Value)
			wantSignInRedirect(t, ls.base, old.navigate(ls.base+"/app"), "/app")
		})
	}

	// The provider no longer knows the session's refresh token (it was
	// restarted and kept its grants in memory, as if an administrator had
	// revoked them): once the access token has expired, the refresh fails
	// with invalid_grant and the session must end rather than carry on.
	t.Run("refresh refused by the provider ends the session", func(t *testing.T) {
		const ttl = 3 * time.Second
		ls, op := newOIDCLoginSite(t, "ACCESS_TOKEN_TTL=3", "ID_TOKEN_TTL=3")
		shots := artifactDir(t)
		login := "rita-" + randomHex(t, 3)
		rep := runBrowser(t, nil, opSignInSteps(ls, op, shots, "/app", login)...)
		c, ok := rep[2].cookie(loginSessionName)
		if !ok {
			t.Fatalf("no session cookie after sign-in")
		}
		u := ls.localUser(t, login+"@example.com")
		web := newWebClient(t)
		web.setCookie(ls.base, loginSessionName, c.Value)
		wantIdentityHeaders(t, wantUpstreamResult(t, web.navigate(ls.base+"/app/1")), u.ID, "", login+"@example.com", login, nil, nil)

		op = op.restart(t)
		restarted := time.Now()
		deadline := restarted.Add(10*ttl + 20*time.Second)
		for {
			r := web.api(http.MethodGet, ls.base+"/app/data", nil)
			if r.Upstream == nil {
				wantUnauthenticatedJSON(t, r, "/app/data")
				t.Logf("the session ended %v after the provider forgot the grant", time.Since(restarted).Round(time.Millisecond))
				break
			}
			// A poll with a generous deadline, not a bound on the delay: on a
			// loaded machine the refresh comes when it comes, and what
			// matters is that the refused one ends the session.
			if time.Now().After(deadline) {
				t.Fatalf("%v after the provider forgot the grant (tokens live %v), the session still reaches the upstream; provider events: %+v",
					time.Since(restarted).Round(time.Millisecond), ttl, op.events())
			}
			time.Sleep(250 * time.Millisecond) // pace of a user clicking around
		}
		if n := op.count("grant.error"); n < 1 {
			t.Errorf("the restarted provider saw no refused grant: %+v", op.events())
		}
		// For good: a browser navigation is sent to sign in, the id is dead.
		wantSignInRedirect(t, ls.base, web.navigate(ls.base+"/app/2"), "/app/2")
		if r := web.api(http.MethodGet, ls.base+"/auth/me", nil); r.Status != http.StatusUnauthorized {
			t.Errorf("/auth/me after the refused refresh: %s", r)
		}
	})
}

func wantUpstreamResult(t *testing.T, r result) *echoed {
	t.Helper()
	if r.Status != 200 || r.Upstream == nil {
		t.Fatalf("want the upstream's answer, got %s", r)
	}
	return r.Upstream
}
