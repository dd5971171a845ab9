package integration

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-cognito/caddy-cognito/integration/internal/cognitolocal"
	"github.com/caddy-cognito/caddy-cognito/internal/pgtest"
)

// Several Caddy instances on one PostgreSQL store (`store postgres`):
//
//	TestScaleOutTwoInstances   sign in on A, the cookie works on B; logout on A, B refuses
//	                           within 1 s (delay printed); `caddy cognito users disable` on
//	                           the CLI, both refuse; kill -9 of B under sign-in load, A
//	                           keeps serving, B restarts cleanly
//	TestScaleOutInvitations    an invitation accepted through A is used on B too; 50
//	                           concurrent acceptances spread over A and B: exactly one wins
//
// Both instances are the xcaddy-built binary with the same Caddyfile (but
// their ports), sharing the DSN and the secret; a real PostgreSQL from
// internal/pgtest, cognito-local's hosted UI.

// scaleOutCaddyfile: every signed-in user reaches the upstream; first
// sign-ins are admitted (admit any). The secret is the global one, shared.
const scaleOutCaddyfile = `{
	admin {$CADDY_ADMIN}
	auto_https off
	cognito {
		store postgres @DSN@
		secret @SHARED_SECRET@
		pool main {
			issuer @ISSUER@
			client_id @CLIENT_ID@
			client_secret @CLIENT_SECRET@
			domain @DOMAIN@
		}
	}
}

http://127.0.0.1:@PORT@ {
	cognito_login {
		admit any
	}
	reverse_proxy @UPSTREAM@
}
`

// changeDeadline is the bound for a change on one instance to be
// seen by the others (the goal is 100 ms; the delay is printed).
const changeDeadline = time.Second

// scaleOut is two instances of one Caddyfile on one PostgreSQL database.
type scaleOut struct {
	s      *stack
	a, b   *loginSite
	ports  []int
	vars   map[string]string
	client cognitolocal.AppClient
}

func newScaleOut(t *testing.T, caddyfile string) *scaleOut {
	t.Helper()
	s := getStack(t)
	cognitolocal.RequirePatched(t)
	dsn := pgtest.Shared(t).NewDatabase(t)
	so := &scaleOut{s: s, ports: make([]int, 2)}
	bases := make([]string, 2)
	for i := range so.ports {
		p, err := cognitolocal.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		so.ports[i], bases[i] = p, fmt.Sprintf("http://127.0.0.1:%d", p)
	}
	so.client = twoSiteAppClient(t, s, bases)
	so.vars = map[string]string{
		"@DSN@": dsn, "@SHARED_SECRET@": randomHex(t, 24),
		"@ISSUER@": s.issuer, "@CLIENT_ID@": so.client.ClientID, "@CLIENT_SECRET@": so.client.ClientSecret, "@DOMAIN@": s.cl.URL,
	}
	so.a = so.start(t, 0, caddyfile)
	so.b = so.start(t, 1, caddyfile)
	return so
}

// start starts instance i (again).
func (so *scaleOut) start(t *testing.T, i int, caddyfile string) *loginSite {
	t.Helper()
	ls := newLoginSite(t, so.s, so.ports[i], caddyfile, so.vars)
	ls.client, ls.issuer = so.client, so.s.issuer
	return ls
}

func TestScaleOutTwoInstances(t *testing.T) {
	so := newScaleOut(t, scaleOutCaddyfile)
	s, a, b := so.s, so.a, so.b

	email := uniqueEmail(t, "max", "example.com")
	cognitoUser(t, s, email, nil, nil)

	// signInOnA signs in through A and returns the session cookie value.
	signInOnA := func(t *testing.T) string {
		t.Helper()
		return a.signInPlain(t, newWebClient(t), "/app", email).wantSignedIn(t, "/app")
	}

	t.Run("sign in on A, the cookie works on B", func(t *testing.T) {
		sid := signInOnA(t)
		for _, ls := range []*loginSite{a, b} {
			wantUpstreamWith(t, ls, sid)
		}
	})

	t.Run("logout on A, B refuses within 1s", func(t *testing.T) {
		sid := signInOnA(t)
		wantUpstreamWith(t, b, sid) // B has the session in its memory cache now
		c := newWebClient(t)
		c.setCookie(a.base, loginSessionName, sid)
		a.logoutPlain(t, c, "/")
		t.Logf("B refused the session %v after the logout on A answered", refusedWithin(t, b, sid))
	})

	t.Run("users disable on the CLI, both refuse", func(t *testing.T) {
		sid := signInOnA(t)
		for _, ls := range []*loginSite{a, b} {
			wantUpstreamWith(t, ls, sid)
		}
		a.cliOK(t, "users", "disable", email)
		for _, ls := range []*loginSite{a, b} {
			t.Logf("%s refused the disabled user's session %v after the CLI exited", ls.base, refusedWithin(t, ls, sid))
		}
		a.cliOK(t, "users", "enable", email)
		b.cliOK(t, "users", "show", email) // the CLI works on either instance's config
	})

	t.Run("kill -9 of B under sign-in load: A keeps serving, B restarts", func(t *testing.T) {
		sid := signInOnA(t)
		var stop atomic.Bool
		var served, failed atomic.Int64
		var wg sync.WaitGroup
		var firstFailure atomic.Value
		for w := 0; w < 4; w++ {
			c := newWebClient(t)
			c.setCookie(a.base, loginSessionName, sid)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !stop.Load() {
					if st, err := getStatus(c.hc, a.base+"/app/load"); err == nil && st == http.StatusOK {
						served.Add(1)
					} else {
						failed.Add(1)
						firstFailure.CompareAndSwap(nil, fmt.Sprintf("status %d, %v", st, err))
					}
				}
			}()
		}
		// Sign-ins during the kill: each one writes users, identities and
		// sessions through A while B dies holding connections.
		for i := 0; i < 3; i++ {
			if i == 1 {
				b.caddy.Kill()
			}
			signInOnA(t)
		}
		stop.Store(true)
		wg.Wait()
		if failed.Load() != 0 || served.Load() == 0 {
			t.Errorf("A under load while B was killed: %d served, %d failed (first: %v)", served.Load(), failed.Load(), firstFailure.Load())
		}
		t.Logf("A served %d signed-in requests while B was killed", served.Load())
		// B starts again on the same store and knows the session.
		wantUpstreamWith(t, so.start(t, 1, scaleOutCaddyfile), sid)
	})

	t.Run("store unreachable: 503, never a sign-in; back when it is", func(t *testing.T) {
		sid := signInOnA(t)
		wantUpstreamWith(t, a, sid)
		srv := pgtest.Shared(t)
		dsn := so.vars["@DSN@"]
		db := dsn[strings.LastIndex(dsn, "/")+1 : strings.Index(dsn, "?")]
		if err := srv.Exec(context.Background(), `ALTER DATABASE `+db+` WITH ALLOW_CONNECTIONS false`); err != nil {
			t.Fatal(err)
		}
		if err := srv.Exec(context.Background(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '`+db+`'`); err != nil {
			t.Fatal(err)
		}
		c := newWebClient(t)
		c.setCookie(a.base, loginSessionName, sid)
		waitStatus(t, c, a.base+"/app", http.StatusServiceUnavailable, "with the database unreachable")
		if err := srv.Exec(context.Background(), `ALTER DATABASE `+db+` WITH ALLOW_CONNECTIONS true`); err != nil {
			t.Fatal(err)
		}
		waitStatus(t, c, a.base+"/app", http.StatusOK, "with the database back")
	})
}

// waitStatus polls u until it answers want; any answer but want and 200
// (the state before the change) fails, as does a 10 s deadline.
func waitStatus(t *testing.T, c *webClient, u string, want int, when string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := getStatus(c.hc, u)
		if err != nil {
			t.Fatal(err)
		}
		if st == want {
			return
		}
		if st != http.StatusOK && st != http.StatusServiceUnavailable {
			t.Fatalf("%s %s: status %d, want %d (never a sign-in redirect)", when, u, st, want)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s %s: still %d after 10s, want %d", when, u, st, want)
		}
		time.Sleep(20 * time.Millisecond) // poll interval
	}
}

// twoSiteAppClient creates a confidential app client of the stack's pool
// whose callback and sign-out URLs cover every base.
func twoSiteAppClient(t *testing.T, s *stack, bases []string) cognitolocal.AppClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var callbacks, logouts []string
	for _, b := range bases {
		callbacks = append(callbacks, b+"/auth/callback")
		logouts = append(logouts, b+"/auth/logout/done")
	}
	client, err := s.cl.CreateUserPoolClient(ctx, s.pool.ID, "scaleout-"+randomHex(t, 4), cognitolocal.ClientOptions{
		GenerateSecret: true, CallbackURLs: callbacks, LogoutURLs: logouts,
		AllowedOAuthFlows: []string{"code"}, OAuthScopes: []string{"openid", "email", "profile"},
	})
	if err != nil {
		t.Fatalf("creating the app client: %v", err)
	}
	return client
}

// wantUpstreamWith: the session cookie sid reaches ls's upstream.
func wantUpstreamWith(t *testing.T, ls *loginSite, sid string) {
	t.Helper()
	c := newWebClient(t)
	c.setCookie(ls.base, loginSessionName, sid)
	if r := c.navigate(ls.base + "/app"); r.Status != http.StatusOK || r.Upstream == nil {
		t.Fatalf("%s/app with the session cookie: want the upstream, got %s", ls.base, r)
	}
}

// refusedWithin polls ls with the cookie sid until it sends the browser to
// sign in, and returns how long that took; past changeDeadline it fails.
func refusedWithin(t *testing.T, ls *loginSite, sid string) time.Duration {
	t.Helper()
	c := newWebClient(t)
	c.setCookie(ls.base, loginSessionName, sid)
	start := time.Now()
	for {
		st, err := getStatus(c.hc, ls.base+"/app")
		if err != nil {
			t.Fatal(err)
		}
		if st == http.StatusFound {
			return time.Since(start)
		}
		if st != http.StatusOK {
			t.Fatalf("%s/app: status %d while waiting for a refusal", ls.base, st)
		}
		if time.Since(start) > changeDeadline {
			t.Fatalf("%s still serves the session %v after the change", ls.base, time.Since(start))
		}
	}
}

// getStatus sends a GET without following redirects and returns the status.
func getStatus(hc *http.Client, u string) (int, error) {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	_ = resp.Body.Close() // the status is all we need
	return resp.StatusCode, nil
}

// scaleOutInviteCaddyfile: invitation links (no mail: the admin API
// answers the link) and first sign-ins admitted only by invitation.
const scaleOutInviteCaddyfile = `{
	admin {$CADDY_ADMIN}
	auto_https off
	cognito {
		store postgres @DSN@
		secret @SHARED_SECRET@
		pool main {
			issuer @ISSUER@
			client_id @CLIENT_ID@
			client_secret @CLIENT_SECRET@
			domain @DOMAIN@
		}
		invitations {
			base_url http://127.0.0.1:@PORT@
		}
	}
}

http://127.0.0.1:@PORT@ {
	cognito_invitations
	cognito_login {
		admit invited
	}
	reverse_proxy @UPSTREAM@
}
`

func TestScaleOutInvitations(t *testing.T) {
	so := newScaleOut(t, scaleOutInviteCaddyfile)
	s, a, b := so.s, so.a, so.b
	inviteOn := func(t *testing.T, ls *loginSite, email string) string {
		t.Helper()
		return secretOf(t, (&inviteSite{loginSite: ls}).invite(t, map[string]any{"email": email, "roles": []string{"member"}}).AcceptURL)
	}
	// acceptStart signs in at ls with the invitation up to the callback,
	// which it returns unvisited, with the client that must visit it.
	acceptStart := func(t *testing.T, ls *loginSite, secret, email string) (*webClient, string) {
		t.Helper()
		c := newWebClient(t)
		r := c.navigate(ls.base + signInHref(secret))
		if r.Status != http.StatusFound {
			t.Fatalf("sign in to accept at %s: %s", ls.base, r)
		}
		return c, ls.hostedUI(t, location(t, r), email).String()
	}

	t.Run("accepted through A, used on B", func(t *testing.T) {
		email := uniqueEmail(t, "ina", "example.com")
		cognitoUser(t, s, email, nil, nil)
		secret := inviteOn(t, a, email)
		c, cb := acceptStart(t, a, secret, email)
		if r := c.navigate(cb); r.Status != http.StatusSeeOther {
			t.Fatalf("accepting through A: want 303 after sign-in, got %s", r)
		}
		other := uniqueEmail(t, "olaf", "example.com")
		cognitoUser(t, s, other, nil, nil)
		c2, cb2 := acceptStart(t, b, secret, other)
		if r := c2.navigate(cb2); r.Status != http.StatusForbidden || !strings.Contains(string(r.Body), inviteUsed) {
			t.Fatalf("the same invitation through B: want the 403 %q, got %s", inviteUsed, r)
		}
	})

	t.Run("50 concurrent acceptances over A and B: one wins", func(t *testing.T) {
		const n = 50
		secret := inviteOn(t, a, uniqueEmail(t, "crowd", "example.com"))
		clients := make([]*webClient, n)
		callbacks := make([]string, n)
		emails := make([]string, n)
		for i := range n {
			emails[i] = uniqueEmail(t, fmt.Sprintf("crowd%02d", i), "example.com")
			cognitoUser(t, s, emails[i], nil, nil)
			clients[i], callbacks[i] = acceptStart(t, []*loginSite{a, b}[i%2], secret, emails[i])
		}
		statuses := make([]int, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				statuses[i], _ = getStatus(clients[i].hc, callbacks[i])
			}()
		}
		close(start)
		wg.Wait()
		won, used := 0, 0
		for i, st := range statuses {
			switch st {
			case http.StatusSeeOther:
				won++
			case http.StatusForbidden:
				used++
			default:
				t.Errorf("acceptance %d (%s): status %d, neither a win nor a refusal", i, emails[i], st)
			}
		}
		if won != 1 || used != n-1 {
			t.Fatalf("%d won, %d refused; want 1 and %d", won, used, n-1)
		}
		created := 0
		for _, e := range emails {
			if a.cli(t, "users", "show", e).code == 0 {
				created++
			}
		}
		if created != 1 {
			t.Errorf("%d local users for the %d identities, want 1", created, n)
		}
	})
}
