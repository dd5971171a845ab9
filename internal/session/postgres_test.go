package session

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/caddy-cognito/caddy-cognito/internal/pgtest"
	"github.com/caddy-cognito/caddy-cognito/userstore"
	"go.uber.org/zap"
)

// TestMain stops the PostgreSQL server the tests below share.
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// openPGStores opens n stores (n Caddy instances) on one fresh database.
func openPGStores(t *testing.T, n int) []*userstore.Store {
	t.Helper()
	dsn := pgtest.Shared(t).NewDatabase(t)
	stores := make([]*userstore.Store, n)
	for i := range stores {
		s, err := userstore.Open(context.Background(), userstore.Options{Driver: "postgres", DSN: dsn})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		stores[i] = s
	}
	return stores
}

// On PostgreSQL too, a signed-in request whose store stamp is unchanged is
// a memory lookup: 100 requests, one store read.
func TestPostgresSessionHotPathIsACacheHit(t *testing.T) {
	f := newSessionFixtureOn(t, openPGStores(t, 1)[0], func(url.Values) (int, any) { return 500, nil })
	h := f.newSession(t, time.Now().Add(time.Hour), "rt")
	for i := 0; i < 100; i++ {
		if _, err := f.m.ByID(context.Background(), h); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.m.loads.Load(); n != 1 {
		t.Errorf("100 requests read the store %d times, want 1", n)
	}
}

// Two instances refresh one due session at once, with a provider that
// rotates refresh tokens and refuses a used one (as Cognito with rotation
// and oidc-provider do). The session survives on both, the provider is
// asked once, and the store holds the newest refresh token.
func TestPostgresRefreshRaceAcrossInstances(t *testing.T) {
	stores := openPGStores(t, 2)
	var mu sync.Mutex
	current, issued := "rt-1", 1
	f := newSessionFixtureOn(t, stores[0], func(form url.Values) (int, any) {
		mu.Lock()
		defer mu.Unlock()
		if form.Get("refresh_token") != current {
			return 400, map[string]string{"error": "invalid_grant"}
		}
		issued++
		current = fmt.Sprintf("rt-%d", issued)
		return 200, map[string]any{"access_token": "at", "token_type": "Bearer", "expires_in": 3600, "refresh_token": current}
	})
	b := New(stores[1], f.m.sealer, f.provider, f.m.cfg, zap.NewNop())
	h := f.newSession(t, time.Now().Add(-time.Second), "rt-1")
	managers := []*Manager{f.m, b}
	start := make(chan struct{})
	wait := fanOut(40, func(i int) error {
		<-start
		s, err := managers[i%2].ByID(context.Background(), h)
		if err == nil && s.identity.Username != "alice" {
			err = errors.New("refreshed session lost its identity")
		}
		return err
	})
	close(start)
	for _, err := range wait() {
		if err != nil {
			t.Errorf("a request during the race: %v", err)
		}
	}
	if got := f.refreshN.Load(); got != 1 {
		t.Errorf("the provider was asked %d times, want 1", got)
	}
	mu.Lock()
	want := current
	mu.Unlock()
	if rt := f.storedRefreshToken(t, h); rt != want {
		t.Errorf("stored refresh token %q, want the newest %q", rt, want)
	}
	for i, m := range managers {
		if _, err := m.ByID(context.Background(), h); err != nil {
			t.Errorf("instance %d after the race: %v", i, err)
		}
	}
}
