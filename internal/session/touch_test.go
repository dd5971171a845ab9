package session

import (
	"context"
	"errors"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
)

// heldTouches is a store whose first TouchSession waits for release;
// every call is counted.
type heldTouches struct {
	Store
	calls   atomic.Int64
	entered chan struct{}
	release chan struct{}
}

func (s *heldTouches) TouchSession(ctx context.Context, h string, lastSeen, idle time.Time) error {
	if s.calls.Add(1) == 1 {
		close(s.entered)
		<-s.release
	}
	return s.Store.TouchSession(ctx, h, lastSeen, idle)
}

// TestSessionTouchOnceUnderConcurrency: a busy session whose last touch is
// over a minute old is touched by one request, while the others go on
// without writing, even those that read the session before the touch
// committed.
func TestSessionTouchOnceUnderConcurrency(t *testing.T) {
	f := newSessionFixture(t, func(url.Values) (int, any) { return 500, nil })
	ctx := context.Background()
	raw := f.newSessionSeen(t, time.Now().Add(time.Hour), "rt", time.Now().Add(-2*time.Minute))
	store := &heldTouches{Store: f.store, entered: make(chan struct{}), release: make(chan struct{})}
	m := New(store, f.m.sealer, f.provider, testConfig("https://issuer.example", "rp"), zap.NewNop())

	first := make(chan error, 1)
	go func() {
		_, err := m.ByID(ctx, raw)
		first <- err
	}()
	<-store.entered // that request is touching, and holds the write
	wait := fanOut(32, func(int) error {
		_, err := m.ByID(ctx, raw)
		return err
	})
	for _, err := range wait() {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := store.calls.Load(); got != 1 {
		t.Errorf("%d touches of one session while the first was in flight, want 1", got)
	}
	close(store.release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	// Read again after the touch: the row says it was just seen.
	if _, err := m.ByID(ctx, raw); err != nil {
		t.Fatal(err)
	}
	if got := store.calls.Load(); got != 1 {
		t.Errorf("%d touches after the first committed, want 1", got)
	}
	sess, err := f.store.GetSession(ctx, HashID(raw))
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(sess.LastSeenAt) > time.Minute {
		t.Errorf("last seen %v ago after the touch", time.Since(sess.LastSeenAt))
	}
}

// On PostgreSQL a touch is not a store change: the sessions cached before
// it stay cached, on this instance and on another one.
func TestPostgresTouchKeepsSessionsCached(t *testing.T) {
	stores := openPGStores(t, 2)
	f := newSessionFixtureOn(t, stores[0], func(url.Values) (int, any) { return 500, nil })
	t.Run("this instance", func(t *testing.T) { testTouchKeepsSessionsCached(t, f, f.m) })
	// ChangeCheckAge 0: the other instance reads the change counter itself
	// on every request, not waiting for a notification.
	cfg := f.m.cfg
	cfg.ChangeCheckAge = 0
	other := New(stores[1], f.m.sealer, f.provider, cfg, zap.NewNop())
	t.Run("another instance", func(t *testing.T) { testTouchKeepsSessionsCached(t, f, other) })
}

// testTouchKeepsSessionsCached: other caches a session, f.m touches
// another one, other's copy is still used.
func testTouchKeepsSessionsCached(t *testing.T, f *sessionFixture, other *Manager) {
	ctx := context.Background()
	stale := time.Now().Add(-2 * time.Minute) // due for a touch
	touched := f.newSessionSeen(t, time.Now().Add(time.Hour), "rt", stale)
	cached := f.newSessionSeen(t, time.Now().Add(time.Hour), "rt", time.Now())
	if _, err := other.ByID(ctx, cached); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.ByID(ctx, touched); err != nil {
		t.Fatal(err)
	}
	loads := other.loads.Load() // other may be f.m, which just read touched
	if sess, err := f.store.GetSession(ctx, HashID(touched)); err != nil || time.Since(sess.LastSeenAt) > time.Minute {
		t.Fatalf("the session was not touched: %+v, %v", sess, err)
	}
	for i := 0; i < 10; i++ {
		if _, err := other.ByID(ctx, cached); err != nil {
			t.Fatal(err)
		}
	}
	if got := other.loads.Load() - loads; got != 0 {
		t.Errorf("after another session's touch the cached session was read again %d times, want 0", got)
	}
}

// A cached copy whose idle deadline has passed is not trusted to end the
// session: another instance's touch (not a store change) may have moved
// the deadline. The store is read; the session goes on.
func TestCachedIdleExpiryIsCheckedInTheStore(t *testing.T) {
	f := newSessionFixture(t, func(url.Values) (int, any) { return 500, nil })
	ctx := context.Background()
	raw := f.newSession(t, time.Now().Add(time.Hour), "rt") // idle until +1h in the store
	s, err := f.m.ByID(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	old := *s
	old.idleExpires = time.Now().Add(-time.Second) // as read before a touch elsewhere
	f.m.put(&old)
	loads := f.m.loads.Load()
	s, err = f.m.ByID(ctx, raw)
	if err != nil {
		t.Fatalf("a session the store holds as live ended: %v", err)
	}
	if !s.idleExpires.After(time.Now()) || f.m.loads.Load() != loads+1 {
		t.Errorf("idle deadline %v after %d store reads; want the store's, after 1", s.idleExpires, f.m.loads.Load()-loads)
	}
	// A session the store holds as over ends, as before.
	if err := f.store.DeleteSession(ctx, HashID(raw)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.ByID(ctx, raw); !errors.Is(err, ErrNoSession) {
		t.Errorf("deleted session: %v, want ErrNoSession", err)
	}
}

func TestTouchLogClaims(t *testing.T) {
	var l touchLog
	t0 := time.Unix(1_800_000_000, 0)
	if !l.claim("a", t0) || l.claim("a", t0.Add(time.Second)) || !l.claim("b", t0.Add(time.Second)) {
		t.Fatal("one claim per session per minute")
	}
	if !l.claim("a", t0.Add(touchEvery)) {
		t.Error("a minute later, a may be touched again")
	}
	// That claim swept the log, and kept b, claimed 59 s before it.
	if _, ok := l.at["b"]; !ok {
		t.Error("b's entry, 59 s old, was swept")
	}
	if !l.claim("c", t0.Add(3*touchEvery)) {
		t.Fatal("c")
	}
	if len(l.at) != 1 {
		t.Errorf("old entries kept: %v", l.at)
	}
}
