package session

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

type count struct{ n atomic.Int64 }

func (c *count) Inc() { c.n.Add(1) }

type counters struct{ hit, miss, ok, refused, unreachable count }

// withCounters remakes f's manager with counters and a log observer.
func (f *sessionFixture) withCounters(t *testing.T) (*counters, *observer.ObservedLogs) {
	c := &counters{}
	core, logs := observer.New(zapcore.InfoLevel)
	cfg := testConfig("https://issuer.example", "rp")
	cfg.Counters = Counters{CacheHit: &c.hit, CacheMiss: &c.miss, Refreshes: func(pool string) RefreshCounters {
		if pool != "main" {
			t.Errorf("refresh counters asked for pool %q", pool)
		}
		return RefreshCounters{OK: &c.ok, Refused: &c.refused, Unreachable: &c.unreachable}
	}}
	f.m = New(f.store, f.m.sealer, f.m.bindings[0].Provider, cfg, zap.New(core))
	return c, logs
}

func TestSessionCountsCacheLookups(t *testing.T) {
	f := newSessionFixture(t, func(url.Values) (int, any) { return 500, nil })
	c, _ := f.withCounters(t)
	h := f.newSession(t, time.Now().Add(time.Hour), "rt")
	for i := 0; i < 3; i++ {
		if _, err := f.m.ByID(context.Background(), h); err != nil {
			t.Fatal(err)
		}
	}
	if c.miss.n.Load() != 1 || c.hit.n.Load() != 2 {
		t.Fatalf("miss %d hit %d, want 1 and 2", c.miss.n.Load(), c.hit.n.Load())
	}
}

func TestSessionCountsRefreshes(t *testing.T) {
	var status atomic.Int32 // the token endpoint answers on its own goroutine
	status.Store(200)
	f := newSessionFixture(t, func(url.Values) (int, any) {
		switch status.Load() {
		case 200:
			return 200, map[string]any{"access_token": "at-2", "token_type": "Bearer", "expires_in": 3600}
		case 400:
			return 400, map[string]string{"error": "invalid_grant"}
		}
		return 503, map[string]string{"error": "temporarily_unavailable"}
	})
	c, logs := f.withCounters(t)
	ctx := context.Background()
	if _, err := f.m.ByID(ctx, f.newSession(t, time.Now().Add(-time.Second), "rt-ok")); err != nil {
		t.Fatal(err)
	}
	status.Store(503)
	if _, err := f.m.ByID(ctx, f.newSession(t, time.Now().Add(-time.Second), "rt-later")); err != nil {
		t.Fatalf("provider down within the grace window: %v", err)
	}
	status.Store(400)
	if _, err := f.m.ByID(ctx, f.newSession(t, time.Now().Add(-time.Second), "rt-secret-refused")); !errors.Is(err, ErrNoSession) {
		t.Fatalf("refused refresh: %v", err)
	}
	if c.ok.n.Load() != 1 || c.unreachable.n.Load() != 1 || c.refused.n.Load() != 1 {
		t.Fatalf("ok %d unreachable %d refused %d, want 1 each", c.ok.n.Load(), c.unreachable.n.Load(), c.refused.n.Load())
	}
	// The refused refresh is a security event at Info with the local
	// user id, and no token.
	ended := logs.FilterMessage("session ended: token refresh failed").All()
	if len(ended) != 1 || ended[0].ContextMap()["user"] != f.user.ID {
		t.Fatalf("refused refresh log: %+v", ended)
	}
	for _, e := range logs.All() {
		for k, v := range e.ContextMap() {
			if s, _ := v.(string); strings.Contains(s, "rt-") {
				t.Errorf("log %q field %s holds a refresh token: %q", e.Message, k, s)
			}
		}
	}
}
