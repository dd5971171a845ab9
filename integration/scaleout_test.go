package integration

import (
	"context"
	"fmt"
	"net/http"
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

func TestScaleOutTwoInstances(t *testing.T) {
	s := getStack(t)
	cognitolocal.RequirePatched(t)
	dsn := pgtest.Shared(t).NewDatabase(t)
	ports := make([]int, 2)
	bases := make([]string, 2)
	for i := range ports {
		p, err := cognitolocal.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		ports[i], bases[i] = p, fmt.Sprintf("http://127.0.0.1:%d", p)
	}
	client := twoSiteAppClient(t, s, bases)
	vars := map[string]string{
		"@DSN@": dsn, "@SHARED_SECRET@": randomHex(t, 24),
		"@ISSUER@": s.issuer, "@CLIENT_ID@": client.ClientID, "@CLIENT_SECRET@": client.ClientSecret, "@DOMAIN@": s.cl.URL,
	}
	a := newLoginSite(t, s, ports[0], scaleOutCaddyfile, vars)
	b := newLoginSite(t, s, ports[1], scaleOutCaddyfile, vars)
	for _, ls := range []*loginSite{a, b} {
		ls.client, ls.issuer = client, s.issuer
	}

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
		b2 := newLoginSite(t, s, ports[1], scaleOutCaddyfile, vars)
		b2.client, b2.issuer = client, s.issuer
		wantUpstreamWith(t, b2, sid)
	})
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
