package session

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"
)

// touch moves the idle deadline forward, once per touchEvery per session
// in this process. A failed touch is logged and otherwise ignored: the
// session is still valid until its old deadline, and the next touch comes
// touchEvery later.
func (m *Manager) touch(ctx context.Context, s *Live, now time.Time) {
	if !m.touches.claim(s.idHash, now) {
		return
	}
	idle := now.Add(m.cfg.Idle)
	if idle.After(s.absoluteExpires) {
		idle = s.absoluteExpires
	}
	if err := m.store.TouchSession(ctx, s.idHash, now, idle); err != nil {
		m.logger.Warn("could not extend session", zap.Error(err))
		return
	}
	c := *s
	c.lastSeen, c.idleExpires = now, idle
	m.put(&c)
}

// touchLog remembers when this process last touched each session. Without
// it, every request of a busy session that arrives once its last touch is
// a minute old sees the same old lastSeen and writes the same touch
// (measured on PostgreSQL while a touch was still a change of the store
// stamp, so that every cached session and user was read again and the
// reads touched once more: 27 to 33 writes and some 900 reads for one
// session under 64 connections; on SQLite a touch still is one). With it,
// one request touches and the others go on.
type touchLog struct {
	mu    sync.Mutex
	at    map[string]time.Time // by session id hash
	swept time.Time
}

// claim reports whether the caller is to touch the session h now: not
// when this process did (or began to) less than touchEvery ago. Entries
// that old are dropped at most once per touchEvery, so the log holds about
// the sessions used in the last two minutes.
func (t *touchLog) claim(h string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if last, ok := t.at[h]; ok && now.Sub(last) < touchEvery {
		return false
	}
	if t.at == nil {
		t.at = make(map[string]time.Time)
	}
	if now.Sub(t.swept) >= touchEvery {
		for k, at := range t.at {
			if now.Sub(at) >= touchEvery {
				delete(t.at, k)
			}
		}
		t.swept = now
	}
	t.at[h] = now
	return true
}
