package userstore

import (
	"context"
	"database/sql"
	"sync"
)

// changeWatch holds the dedicated connection Version reads from.
type changeWatch struct {
	mu   sync.Mutex
	conn *sql.Conn
}

// Version returns a number that changes whenever any connection, of this
// process or another one (the CLI, a second Caddy), commits a change to
// the store. Callers cache lookups and trust them only while Version
// stays the same: a disabled user is then refused on the very next request.
//
// SQLite's data_version is per connection and moves only for commits made
// by other connections, so it is read from one dedicated connection that
// never writes. (A PostgreSQL backend would keep a change counter row.)
func (s *Store) Version(ctx context.Context) (int64, error) {
	w := &s.watch
	w.mu.Lock()
	defer w.mu.Unlock()
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
