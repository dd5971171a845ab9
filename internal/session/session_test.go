package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-cognito/caddy-cognito/internal/identity"
	"github.com/caddy-cognito/caddy-cognito/internal/provider"
	"github.com/caddy-cognito/caddy-cognito/internal/seal"
	"github.com/caddy-cognito/caddy-cognito/internal/standin"
	"github.com/caddy-cognito/caddy-cognito/userstore"
	"go.uber.org/zap"
)

// testConfig is the pool and client of the fixture's sessions.
func testConfig(issuer, clientID string) Config {
	return Config{Pool: "main", Issuer: issuer, ClientID: clientID, Idle: time.Hour, Lifetime: 24 * time.Hour, ChangeCheckAge: 5 * time.Millisecond}
}

// sessionFixture is a session manager on a real store, whose provider is a
// fake token endpoint answering refreshes with respond.
type sessionFixture struct {
	m        *Manager
	store    *userstore.Store
	user     *userstore.User
	refreshN atomic.Int64
	endpoint *standin.TokenEndpoint
	provider Provider
}

func newSessionFixture(t *testing.T, respond func(url.Values) (int, any)) *sessionFixture {
	t.Helper()
	store, err := userstore.Open(context.Background(), userstore.Options{Path: filepath.Join(t.TempDir(), "s.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	return newSessionFixtureOn(t, store, respond)
}

// newSessionFixtureOn is newSessionFixture on a store of the caller's.
func newSessionFixtureOn(t *testing.T, store *userstore.Store, respond func(url.Values) (int, any)) *sessionFixture {
	t.Helper()
	ctx := context.Background()
	user, err := store.CreateUser(ctx, "test", userstore.NewUser{Username: "alice", Email: "alice@example.com", Roles: []string{"editor"}})
	if err != nil {
		t.Fatal(err)
	}
	f := &sessionFixture{store: store, user: user}
	f.endpoint = standin.NewTokenEndpoint(t, func(form url.Values) (int, any) {
		f.refreshN.Add(1)
		return respond(form)
	})
	sealer, err := seal.New([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	pp := provider.Pool{Name: "main", Issuer: "https://issuer.example", ClientID: "rp", ClientSecret: "s"}
	pc := provider.Preset(provider.NewClient(pp, provider.Endpoints{Authorize: f.endpoint.URL + "/a", Token: f.endpoint.URL}, nil, nil))
	f.provider = pc
	f.m = New(store, sealer, pc, testConfig("https://issuer.example", "rp"), zap.NewNop())
	return f
}

// newSession stores a session whose refresh falls due at due, with the
// given refresh token, and returns its id (the cookie value).
func (f *sessionFixture) newSession(t *testing.T, due time.Time, refreshToken string) string {
	t.Helper()
	return f.newSessionSeen(t, due, refreshToken, time.Now())
}

// newSessionSeen is newSession for a session last seen at lastSeen.
func (f *sessionFixture) newSessionSeen(t *testing.T, due time.Time, refreshToken string, lastSeen time.Time) string {
	t.Helper()
	raw, _ := provider.RandomToken(32)
	h := HashID(raw)
	claims, _ := json.Marshal(Claims{ID: json.RawMessage(`{"iss":"https://issuer.example","sub":"s-1","cognito:username":"alice","email":"alice@example.com","email_verified":true,"cognito:groups":["staff"]}`)})
	now := time.Now()
	var sealed []byte
	if refreshToken != "" {
		sealed = f.m.sealer.Seal([]byte(refreshToken), []byte(h))
	}
	err := f.store.CreateSession(context.Background(), userstore.Session{
		IDHash: h, UserID: f.user.ID, Issuer: "https://issuer.example", Sub: "s-1", ClientID: "rp",
		CreatedAt: lastSeen, LastSeenAt: lastSeen, IdleExpiresAt: now.Add(time.Hour), AbsoluteExpiresAt: now.Add(24 * time.Hour),
		AccessExpiresAt: due, RefreshToken: sealed, IDTokenClaims: claims,
	})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func (f *sessionFixture) storedRefreshToken(t *testing.T, raw string) string {
	t.Helper()
	h := HashID(raw)
	sess, err := f.store.GetSession(context.Background(), h)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := f.m.sealer.Open(sess.RefreshToken, []byte(h))
	if err != nil {
		t.Fatal(err)
	}
	return string(rt)
}

// fanOut runs fn(0) … fn(n-1), each in a goroutine of its own, like so
// many concurrent requests; wait waits for them all and returns their
// errors (nil ones included).
func fanOut(n int, fn func(i int) error) (wait func() []error) {
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn(i)
		}()
	}
	return func() []error {
		wg.Wait()
		return errs
	}
}

func TestSessionHotPathIsACacheHit(t *testing.T) {
	f := newSessionFixture(t, func(url.Values) (int, any) { return 500, nil })
	h := f.newSession(t, time.Now().Add(time.Hour), "rt")
	for i := 0; i < 100; i++ {
		s, err := f.m.ByID(context.Background(), h)
		if err != nil {
			t.Fatal(err)
		}
		if s.identity.UserID != f.user.ID || s.identity.Username != "alice" || !s.identity.HasAnyRole([]string{"editor"}) || !s.identity.HasAnyGroup([]string{"staff"}) {
			t.Fatalf("identity %+v", s.identity)
		}
	}
	if n := f.m.loads.Load(); n != 1 {
		t.Errorf("100 requests read the store %d times, want 1", n)
	}
}

func TestSessionEndsAtOnceOnThisInstance(t *testing.T) {
	ctx := context.Background()
	f := newSessionFixture(t, func(url.Values) (int, any) { return 500, nil })
	h := f.newSession(t, time.Now().Add(time.Hour), "rt")
	if _, err := f.m.ByID(ctx, h); err != nil {
		t.Fatal(err)
	}
	if err := f.store.SetActive(ctx, "admin", f.user.ID, false); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.ByID(ctx, h); !errors.Is(err, ErrNoSession) {
		t.Fatalf("after disabling the user: err = %v, want ErrNoSession", err)
	}
	if err := f.store.SetActive(ctx, "admin", f.user.ID, true); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.ByID(ctx, h); err != nil {
		t.Fatalf("re-enabled: %v", err)
	}
	if rt := f.m.End(ctx, h); rt != "rt" {
		t.Errorf("end returned refresh token %q, want the stored one", rt)
	}
	if _, err := f.m.ByID(ctx, h); !errors.Is(err, ErrNoSession) {
		t.Fatalf("after logout: err = %v, want ErrNoSession", err)
	}
}

func TestSessionRefreshOnceUnderConcurrency(t *testing.T) {
	release := make(chan struct{})
	f := newSessionFixture(t, func(form url.Values) (int, any) {
		<-release // hold the refresh until every request is waiting on it
		if form.Get("grant_type") != "refresh_token" || form.Get("refresh_token") != "rt-1" {
			return 400, map[string]string{"error": "invalid_request"}
		}
		// Cognito: a new access token, no new refresh token, no ID token.
		return 200, map[string]any{"access_token": "at-2", "token_type": "Bearer", "expires_in": 3600}
	})
	h := f.newSession(t, time.Now().Add(-time.Second), "rt-1")
	wait := fanOut(30, func(int) error {
		s, err := f.m.ByID(context.Background(), h)
		if err == nil && s.identity.Username != "alice" {
			err = errors.New("refreshed session lost its identity")
		}
		return err
	})
	// Every request either waits on the one refresh or is yet to start;
	// let the refresh finish once all have had the chance to join it.
	for f.refreshN.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	close(release)
	for _, err := range wait() {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := f.refreshN.Load(); got != 1 {
		t.Errorf("%d refreshes for one session, want 1", got)
	}
	sess, err := f.store.GetSession(context.Background(), HashID(h))
	if err != nil {
		t.Fatal(err)
	}
	if !sess.AccessExpiresAt.After(time.Now().Add(50 * time.Minute)) {
		t.Errorf("refresh due %v, want about an hour ahead", sess.AccessExpiresAt)
	}
	if rt := f.storedRefreshToken(t, h); rt != "rt-1" {
		t.Errorf("refresh token %q after a refresh without rotation, want it kept", rt)
	}
}

func TestSessionRefreshRotates(t *testing.T) {
	f := newSessionFixture(t, func(url.Values) (int, any) {
		return 200, map[string]any{"access_token": "at-2", "token_type": "Bearer", "expires_in": 3600, "refresh_token": "rt-2"}
	})
	h := f.newSession(t, time.Now().Add(-time.Second), "rt-1")
	if _, err := f.m.ByID(context.Background(), h); err != nil {
		t.Fatal(err)
	}
	if rt := f.storedRefreshToken(t, h); rt != "rt-2" {
		t.Errorf("refresh token %q after rotation, want rt-2", rt)
	}
}

func TestSessionRefreshRefusedEndsSession(t *testing.T) {
	f := newSessionFixture(t, func(url.Values) (int, any) {
		return 400, map[string]string{"error": "invalid_grant"}
	})
	h := f.newSession(t, time.Now().Add(-time.Second), "rt-1")
	if _, err := f.m.ByID(context.Background(), h); !errors.Is(err, ErrNoSession) {
		t.Fatalf("refused refresh: err = %v, want ErrNoSession", err)
	}
	if _, err := f.store.GetSession(context.Background(), HashID(h)); !errors.Is(err, userstore.ErrNotFound) {
		t.Errorf("session still stored after a refused refresh: %v", err)
	}
	// No refresh token at all: the session ends when the refresh is due.
	h2 := f.newSession(t, time.Now().Add(-time.Second), "")
	if _, err := f.m.ByID(context.Background(), h2); !errors.Is(err, ErrNoSession) {
		t.Fatalf("no refresh token: err = %v, want ErrNoSession", err)
	}
}

func TestSessionRefreshProviderDownGrace(t *testing.T) {
	f := newSessionFixture(t, func(url.Values) (int, any) {
		return 503, map[string]string{"error": "temporarily_unavailable"}
	})
	// Due a moment ago: the access token is still good, the session goes on.
	h := f.newSession(t, time.Now().Add(-time.Second), "rt-1")
	if _, err := f.m.ByID(context.Background(), h); err != nil {
		t.Fatalf("provider down within the grace window: %v", err)
	}
	// Due long ago: the access token has expired; the session ends.
	h2 := f.newSession(t, time.Now().Add(-2*refreshGrace), "rt-1")
	if _, err := f.m.ByID(context.Background(), h2); !errors.Is(err, ErrNoSession) {
		t.Fatalf("provider down past the grace window: err = %v, want ErrNoSession", err)
	}
}

func TestRefreshDue(t *testing.T) {
	now := time.Now()
	for _, c := range []struct {
		expiry time.Time
		want   time.Time
	}{
		{now.Add(time.Hour), now.Add(time.Hour - 2*time.Minute)},
		{now.Add(4 * time.Second), now.Add(3 * time.Second)},
		{time.Time{}, now.Add(5 * time.Minute)},
	} {
		if got := refreshDue(c.expiry, now); !got.Equal(c.want) {
			t.Errorf("refreshDue(%v) = %v, want %v", c.expiry.Sub(now), got.Sub(now), c.want.Sub(now))
		}
	}
}

// TestSignInPurgesExpiredSessions: expired sessions do not pile up; a
// sign-in clears them (at most once per purgeEvery).
func TestSignInPurgesExpiredSessions(t *testing.T) {
	ctx := context.Background()
	f := newSessionFixture(t, func(url.Values) (int, any) { return 500, nil })
	old := time.Now().Add(-48 * time.Hour)
	raw, _ := provider.RandomToken(32)
	expired := HashID(raw)
	if err := f.store.CreateSession(ctx, userstore.Session{
		IDHash: expired, UserID: f.user.ID, Issuer: "https://issuer.example", Sub: "s-1", ClientID: "rp",
		CreatedAt: old, IdleExpiresAt: old.Add(time.Hour), AbsoluteExpiresAt: old.Add(2 * time.Hour), AccessExpiresAt: old,
	}); err != nil {
		t.Fatal(err)
	}
	ts := &provider.TokenSet{AccessToken: "at", Expiry: time.Now().Add(time.Hour), IDClaims: json.RawMessage(`{"iss":"https://issuer.example","sub":"s-1"}`)}
	r, _ := http.NewRequest(http.MethodGet, "/auth/callback", nil)
	if _, err := f.m.Create(ctx, r, f.user, ts, "", &identity.IDClaims{Issuer: "https://issuer.example", Subject: "s-1"}); err != nil {
		t.Fatal(err)
	}
	// Nothing expired is left for a purge to find.
	if n, err := f.store.PurgeExpiredSessions(ctx, time.Now()); err != nil || n != 0 {
		t.Errorf("after a sign-in a purge still found %d expired sessions (%v), want 0", n, err)
	}
}

// TestSessionBoundToPoolAndClient: a session belongs to the issuer and app
// client that signed it in. The cookie of one pool's site, carried to a
// cognito_login of another pool (or another client of the same pool) on
// the same server, is no session there, and signing out there never
// hands its refresh token to the other provider.
func TestSessionBoundToPoolAndClient(t *testing.T) {
	f := newSessionFixture(t, func(url.Values) (int, any) { return 500, nil })
	raw := f.newSession(t, time.Now().Add(time.Hour), "rt-of-main")
	ctx := context.Background()
	if _, err := f.m.ByID(ctx, raw); err != nil {
		t.Fatalf("own pool: %v", err)
	}
	other := func(issuer, client string) *Manager {
		pp := provider.Pool{Name: "other", Issuer: issuer, ClientID: client, ClientSecret: "s"}
		cfg := testConfig(issuer, client)
		cfg.Pool = "other"
		return New(f.store, f.m.sealer, provider.NewResolver(pp, nil, zap.NewNop()), cfg, zap.NewNop())
	}
	for _, c := range []struct{ name, issuer, client string }{
		{"another pool", "https://other.example", "rp"},
		{"another client of the pool", "https://issuer.example", "rp2"},
	} {
		m := other(c.issuer, c.client)
		if s, err := m.ByID(ctx, raw); !errors.Is(err, ErrNoSession) {
			t.Errorf("%s: session %+v, err %v; want ErrNoSession", c.name, s, err)
		}
		if rt := m.End(ctx, raw); rt != "" {
			t.Errorf("%s: signing out handed over the refresh token %q", c.name, rt)
		}
		raw = f.newSession(t, time.Now().Add(time.Hour), "rt-of-main") // end deleted it
	}
}

// TestSessionOfSeveralPools: a manager that keeps the sessions of two
// pools (a multi-pool cognito_login) honours each, bound to its own pool
// (the upstream is told which), ends each naming its pool (whose provider
// revokes), and still honours no session of a pool it does not list.
func TestSessionOfSeveralPools(t *testing.T) {
	f := newSessionFixture(t, func(url.Values) (int, any) { return 500, nil })
	raw := f.newSession(t, time.Now().Add(time.Hour), "rt-of-main")
	ctx := context.Background()
	partners := provider.NewResolver(provider.Pool{Name: "partners", Issuer: "https://partners.example", ClientID: "prp"}, nil, zap.NewNop())
	cfg := testConfig("https://other.example", "orp") // a first pool the session is not of
	cfg.Pool = "other"
	cfg.More = []Binding{
		{Pool: "partners", Issuer: "https://partners.example", ClientID: "prp", Provider: partners},
		{Pool: "main", Issuer: "https://issuer.example", ClientID: "rp", Provider: f.m.bindings[0].Provider},
	}
	m := New(f.store, f.m.sealer, partners, cfg, zap.NewNop())
	s, err := m.ByID(ctx, raw)
	if err != nil || s.Pool() != "main" || s.Identity().Pool != "main" || s.Identity().ClientID != "rp" {
		t.Fatalf("main's session on a manager listing main: %+v, %v", s, err)
	}
	if m.Provider("partners") != partners || m.Provider("nobody") != nil {
		t.Fatal("Provider does not find the pools' providers by name")
	}
	if rt, pool, _ := m.EndIn(ctx, raw); rt != "rt-of-main" || pool != "main" {
		t.Fatalf("EndIn = %q, %q; want main's token and pool", rt, pool)
	}
	// Listing only other pools: main's session is none.
	raw = f.newSession(t, time.Now().Add(time.Hour), "rt-of-main")
	cfg.More = cfg.More[:1]
	m = New(f.store, f.m.sealer, partners, cfg, zap.NewNop())
	if s, err := m.ByID(ctx, raw); !errors.Is(err, ErrNoSession) {
		t.Fatalf("main's session on a manager not listing main: %+v, %v", s, err)
	}
	if rt, pool, _ := m.EndIn(ctx, raw); rt != "" || pool != "" {
		t.Fatalf("EndIn of another pool's session handed over %q, %q", rt, pool)
	}
}

// TestSessionCacheBoundedByBytes: entries near the store's 64 KiB claims
// limit fill the byte bound long before the count bound, and each counts
// its claims.
func TestSessionCacheBoundedByBytes(t *testing.T) {
	f := newSessionFixture(t, func(url.Values) (int, any) { return 500, nil })
	big := json.RawMessage(`{"pad":"` + strings.Repeat("x", 60<<10) + `"}`)
	for i := 0; i < 2*sessionCacheBytes/(60<<10); i++ {
		f.m.put(&Live{rawID: fmt.Sprint("s-", i), claims: Claims{ID: big}})
		if n, b := f.m.cache.Len(), f.m.cache.Bytes(); b > sessionCacheBytes || b != int64(n)*(&Live{claims: Claims{ID: big}}).size() {
			t.Fatalf("after %d entries the cache holds %d bytes in %d entries (bound %d)", i+1, b, n, sessionCacheBytes)
		}
	}
}

// TestSessionIdentityEmailIsTheLocalUsers: the email a session hands
// upstream is the local user's (verified when it was taken), never the
// ID token's claim, which a Cognito user can change to anything.
func TestSessionIdentityEmailIsTheLocalUsers(t *testing.T) {
	claims := Claims{ID: json.RawMessage(`{"iss":"https://issuer.example","sub":"s-1","email":"boss@example.com","email_verified":false}`)}
	for _, c := range []struct{ local, want string }{{"alice@example.com", "alice@example.com"}, {"", ""}} {
		id := sessionIdentity(&Binding{Pool: "main", Issuer: "https://issuer.example", ClientID: "rp"}, claims, &userstore.User{ID: "u_1", Email: c.local}, time.Now())
		h := http.Header{}
		identity.NewHeaders(identity.DefaultHeaderPrefix).Set(h, id)
		if id.Email != c.want || h.Get("X-Auth-Email") != c.want {
			t.Errorf("local email %q: identity email %q, header %q; want %q", c.local, id.Email, h.Get("X-Auth-Email"), c.want)
		}
	}
}
