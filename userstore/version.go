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

	// checkedAt (unix ns, when it started) and external (data_version
	// then) are the last look at the database, published for lock-free
	// reads. external is stored before checkedAt, so a reader that sees a
	// new checkedAt sees its external too.
	checkedAt atomic.Int64
	external  atomic.Int64

	mu   sync.Mutex // held while looking; guards conn and query
	conn *sql.Conn  // dedicated: data_version is per connection
	// query is PRAGMA data_version prepared on conn once: a look runs up
	// to 200 times a second, and parsing it again was half its work.
	query *sql.Stmt

	now func() time.Time // nil: time.Now; tests step it
}

// Stamp identifies one state of the store: equal stamps mean no change
// was committed in between (see Changes).
type Stamp struct {
	local    uint64
	external int64
	// unknown is set (each time to a new value) while a PostgreSQL store
	// cannot follow the changes of others: such a stamp equals no other.
	unknown uint64
}

// Changes returns a Stamp that differs from any earlier one once a change
// has been committed: at once for changes made through this Store, and for
// changes made by another process (the CLI, a second Caddy) to every call
// that starts more than maxAge after the commit. Callers cache lookups and
// trust them only while the stamp stays the same. A change is any write
// but one: on PostgreSQL a session touch is not a change (quietWrite).
//
// It is on the path of every request that uses the store, so within maxAge
// it reads two atomics and takes no lock. A look's age counts from when it
// started, not when it finished, and a caller that finds the last look too
// old waits for the look in flight rather than keep an older stamp: so the
// bound holds however slow a look is on a loaded machine. maxAge 0 always
// looks.
//
// A PostgreSQL store's stamp is fed by LISTEN/NOTIFY (pgfeed.go): reading it
// never queries, whatever maxAge, except that maxAge 0 reads the counter
// from the database too. While the feed is down every stamp is new, so no
// cached entry is trusted.
func (s *Store) Changes(ctx context.Context, maxAge time.Duration) (Stamp, error) {
	local := s.watch.localWrites.Load()
	if f := s.feed; f != nil {
		if maxAge == 0 {
			n, err := pgReadCounter(ctx, s.db)
			if err != nil {
				return Stamp{}, s.wrap("changes", err)
			}
			f.advance(n)
		}
		return f.stamp(local), nil
	}
	w := &s.watch
	if maxAge > 0 && w.fresh(maxAge) {
		return Stamp{local: local, external: w.external.Load()}, nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if maxAge > 0 && w.fresh(maxAge) {
		return Stamp{local: local, external: w.external.Load()}, nil // the look we waited for will do
	}
	started := w.clock().UnixNano()
	v, err := s.versionLocked(ctx)
	if err != nil {
		return Stamp{}, err
	}
	w.external.Store(v)
	w.checkedAt.Store(started)
	return Stamp{local: local, external: v}, nil
}

// fresh reports whether the last published look started less than maxAge
// ago.
func (w *changeWatch) fresh(maxAge time.Duration) bool {
	at := w.checkedAt.Load()
	return at != 0 && w.clock().UnixNano()-at < int64(maxAge)
}

func (w *changeWatch) clock() time.Time {
	if w.now != nil {
		return w.now()
	}
	return time.Now()
}

// Version returns SQLite's data_version for the store: it changes whenever
// another connection, of this process or another one, commits.
//
// data_version is per connection and moves only for commits made by other
// connections, so it is read from one dedicated connection that never
// writes.
//
// For PostgreSQL it is the change counter every write transaction bumps.
func (s *Store) Version(ctx context.Context) (int64, error) {
	if s.feed != nil {
		n, err := pgReadCounter(ctx, s.db)
		return n, s.wrap("version", err)
	}
	s.watch.mu.Lock()
	defer s.watch.mu.Unlock()
	return s.versionLocked(ctx)
}

func (s *Store) versionLocked(ctx context.Context) (int64, error) {
	defer s.observed(false, time.Now())
	w := &s.watch
	if w.conn == nil {
		c, err := s.db.Conn(ctx)
		if err != nil {
			return 0, s.wrap("version", err)
		}
		q, err := c.PrepareContext(ctx, "PRAGMA data_version")
		if err != nil {
			_ = c.Close()
			return 0, s.wrap("version", err)
		}
		w.conn, w.query = c, q
	}
	var v int64
	if err := w.query.QueryRowContext(ctx).Scan(&v); err != nil {
		// drop the connection: the next call starts on a fresh one
		w.dropConn()
		return 0, s.wrap("version", err)
	}
	return v, nil
}

// dropConn closes the dedicated connection and its statement (w.mu held).
func (w *changeWatch) dropConn() {
	if w.conn == nil {
		return
	}
	_ = w.query.Close()
	_ = w.conn.Close()
	w.conn, w.query = nil, nil
}

// closeWatch releases the dedicated connection before the pool closes.
func (s *Store) closeWatch() {
	s.watch.mu.Lock()
	defer s.watch.mu.Unlock()
	s.watch.dropConn()
}
