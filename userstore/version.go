package userstore

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"
	"time"
)

// changeWatch tells when the store's contents may have changed.
type changeWatch struct {
	// localWrites counts this Store's committed write transactions: free
	// to read, so changes made through this process are seen at once.
	localWrites atomic.Uint64

	mu        sync.Mutex
	conn      *sql.Conn // dedicated: data_version is per connection
	checkedAt time.Time
	external  int64 // data_version at checkedAt
}

// Stamp identifies one state of the store: equal stamps mean no commit
// happened in between (see Changes).
type Stamp struct {
	local    uint64
	external int64
}

// Changes returns a Stamp that differs from any earlier one once a change
// has been committed: at once for changes made through this Store, and for
// changes made by another process (the CLI, a second Caddy) as soon as
// they are more than maxAge old. Callers cache lookups and trust them only
// while the stamp stays the same. Concurrent callers within maxAge share
// one look at the database instead of each making one.
func (s *Store) Changes(ctx context.Context, maxAge time.Duration) (Stamp, error) {
	local := s.watch.localWrites.Load()
	w := &s.watch
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.conn != nil && time.Since(w.checkedAt) < maxAge {
		return Stamp{local: local, external: w.external}, nil
	}
	v, err := s.versionLocked(ctx)
	if err != nil {
		return Stamp{}, err
	}
	w.checkedAt, w.external = time.Now(), v
	return Stamp{local: local, external: v}, nil
}

// Version returns SQLite's data_version for the store: it changes whenever
// another connection, of this process or another one, commits.
//
// data_version is per connection and moves only for commits made by other
// connections, so it is read from one dedicated connection that never
// writes. (A PostgreSQL backend would keep a change counter row.)
func (s *Store) Version(ctx context.Context) (int64, error) {
	s.watch.mu.Lock()
	defer s.watch.mu.Unlock()
	return s.versionLocked(ctx)
}

func (s *Store) versionLocked(ctx context.Context) (int64, error) {
	w := &s.watch
	if w.conn == nil {
		c, err := s.db.Conn(ctx)
		if err != nil {
			return 0, s.wrap("version", err)
		}
		w.conn = c
	}
	var v int64
	if err := w.conn.QueryRowContext(ctx, "PRAGMA data_version").Scan(&v); err != nil {
		// drop the connection: the next call starts on a fresh one
		_ = w.conn.Close()
		w.conn = nil
		return 0, s.wrap("version", err)
	}
	return v, nil
}

// closeWatch releases the dedicated connection before the pool closes.
func (s *Store) closeWatch() {
	s.watch.mu.Lock()
	defer s.watch.mu.Unlock()
	if s.watch.conn != nil {
		_ = s.watch.conn.Close()
		s.watch.conn = nil
	}
}
