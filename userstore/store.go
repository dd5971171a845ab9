package userstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Options configure Open.
type Options struct {
	// Driver is the logical database driver. "" and "sqlite" mean the embedded
	// SQLite store (mattn/go-sqlite3 with cgo, modernc.org/sqlite without);
	// "postgres" the shared PostgreSQL store (pgx) named by DSN.
	Driver string
	// Path is the SQLite database file. It and its parent directory (0700) are created
	// if missing; a new file is created 0600 before SQLite opens it, and
	// SQLite gives the -wal and -shm files the same mode.
	Path string
	// DSN is the PostgreSQL database (driver "postgres"): a
	// postgres://user:password@host:5432/db?sslmode=require URL or
	// key=value pairs, as libpq reads them. Several stores (several Caddy
	// instances, the CLI) may share it; each needs a database of its own
	// (notifications are per database).
	DSN string
	// Logger receives operational messages (migrations, warnings). Nil: no logs.
	Logger *zap.Logger
	// Now is the clock; nil means time.Now. Tests pin it.
	Now func() time.Time
	// BusyTimeout is how long a statement waits for another process's lock
	// before failing with ErrUnavailable. Zero means 5s.
	BusyTimeout time.Duration
	// Observe, when set, is told how long each write transaction and each
	// read of the request path (sessions, users, identity lookups, the
	// change check) took: the metrics' seam.
	Observe func(write bool, d time.Duration)

	// Test seams (unexported: same-package tests only).
	extraDSN string     // appended to the DSN, e.g. "mode=ro"
	hooks    *testHooks // observation points in migrate
}

// testHooks let tests force interleavings without sleeping.
type testHooks struct {
	beforeLock func(seenVersion int) // after the unlocked version read, before BEGIN IMMEDIATE
	afterLock  func(seenVersion int) // inside the migration transaction, after the locked re-read
	// feedHeartbeat replaces pgFeedHeartbeat, so a test sees many quiet
	// periods quickly.
	feedHeartbeat time.Duration
}

// Store is the identity store. It is safe for concurrent use. Create it
// with Open; release it with Close. Its consumers declare the small
// interfaces they need of it where they use it.
type Store struct {
	db   *sql.DB
	d    *dialect
	log  *zap.Logger
	now  func() time.Time
	path string
	// writeSem serialises write transactions inside this process when the
	// dialect asks for it (SQLite). A channel rather than a mutex so a
	// cancelled context stops waiting.
	writeSem chan struct{}
	// watch is the connection Version reads the change counter from.
	watch changeWatch
	// feed follows PostgreSQL's change notifications (nil for SQLite).
	feed *pgFeed
	// observe is Options.Observe, or a no-op.
	observe func(write bool, d time.Duration)
}

// observed reports an operation that began at start to Options.Observe.
func (s *Store) observed(write bool, start time.Time) { s.observe(write, time.Since(start)) }

// Open opens (creating if needed) and migrates the store. Errors are
// explicit about what failed: directory creation, file creation or
// permissions, the driver, or the schema version (ErrSchemaTooNew).
func Open(ctx context.Context, opts Options) (*Store, error) {
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = 5 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	switch opts.Driver {
	case "", "sqlite", "sqlite3":
		return openSQLiteStore(ctx, opts)
	case "postgres", "postgresql":
		return openPostgresStore(ctx, opts)
	default:
		return nil, fmt.Errorf("userstore: unknown driver %q (supported: sqlite, postgres)", opts.Driver)
	}
}

func openSQLiteStore(ctx context.Context, opts Options) (*Store, error) {
	if strings.TrimSpace(opts.Path) == "" {
		return nil, errors.New("userstore: Options.Path is required")
	}
	path, err := filepath.Abs(opts.Path)
	if err != nil {
		return nil, fmt.Errorf("userstore: database path %q: %w", opts.Path, err)
	}
	if err := prepareDBFile(path); err != nil {
		return nil, err
	}

	d := sqliteDialect
	db, err := sql.Open(d.driverName, d.dsn(path, &opts))
	if err != nil {
		return nil, fmt.Errorf("userstore: open %s: %w", path, err)
	}
	// Idle connections keep their per-connection pragmas; a small pool is
	// plenty for an auth store and bounds file descriptors.
	db.SetMaxIdleConns(4)
	db.SetConnMaxIdleTime(5 * time.Minute)

	s := newStore(db, d, path, opts)
	if err := s.firstConnection(ctx, opts.BusyTimeout); err != nil {
		_ = db.Close() // the error that made Open give up is the one to report
		return nil, s.wrap("open "+path, err)
	}
	if err := s.checkPragmas(ctx); err != nil {
		_ = db.Close() // the error that made Open give up is the one to report
		return nil, err
	}
	if err := s.migrate(ctx, opts.hooks); err != nil {
		_ = db.Close() // the error that made Open give up is the one to report
		return nil, err
	}
	return s, nil
}

// openPostgresStore opens a PostgreSQL store: the pool, the migrations
// (under the advisory lock), then the change feed. The DSN reaches no
// message with its password.
func openPostgresStore(ctx context.Context, opts Options) (*Store, error) {
	if strings.TrimSpace(opts.DSN) == "" {
		return nil, errors.New("userstore: Options.DSN is required with the postgres driver")
	}
	cfg, err := pgConfig(opts.DSN, opts.BusyTimeout)
	if err != nil {
		return nil, err
	}
	where := RedactDSN(opts.DSN)
	db := openPostgres(cfg)
	s := newStore(db, pgDialect, where, opts)
	pctx, cancel := context.WithTimeout(ctx, opts.BusyTimeout)
	err = db.PingContext(pctx)
	cancel()
	if err != nil {
		_ = db.Close() // the error that made Open give up is the one to report
		return nil, s.wrap("open "+where, err)
	}
	if err := s.migrate(ctx, opts.hooks); err != nil {
		_ = db.Close() // the error that made Open give up is the one to report
		return nil, err
	}
	heartbeat := pgFeedHeartbeat
	if opts.hooks != nil && opts.hooks.feedHeartbeat > 0 {
		heartbeat = opts.hooks.feedHeartbeat
	}
	s.feed = startPgFeed(cfg, s.log, opts.BusyTimeout, heartbeat)
	return s, nil
}

func newStore(db *sql.DB, d *dialect, path string, opts Options) *Store {
	return &Store{
		db:       db,
		d:        d,
		log:      opts.Logger.Named("userstore"),
		now:      opts.Now,
		path:     path,
		writeSem: make(chan struct{}, 1),
		observe:  observer(opts.Observe),
	}
}

// observer is Options.Observe, or a no-op.
func observer(f func(write bool, d time.Duration)) func(write bool, d time.Duration) {
	if f == nil {
		return func(bool, time.Duration) {}
	}
	return f
}

// Close closes the database. Calls after Close fail with ErrUnavailable.
func (s *Store) Close() error {
	if s.feed != nil {
		s.feed.stop()
	}
	s.closeWatch()
	return s.db.Close()
}

// Path is the absolute path of the database file; for PostgreSQL, the DSN
// with its password masked (RedactDSN).
func (s *Store) Path() string { return s.path }

// prepareDBFile creates the parent directory (0700) and the database file
// (0600) so SQLite never creates it with the process umask, and reports
// unusable locations before the driver turns them into vaguer errors.
func prepareDBFile(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("userstore: cannot create directory %s for the database: %w", dir, err)
	}
	fi, err := os.Stat(path)
	switch {
	case err == nil && fi.IsDir():
		return fmt.Errorf("userstore: database path %s is a directory", path)
	case err == nil:
		// Existing file: SQLite would silently fall back to read-only if it
		// cannot write, and every request would then fail. Say so now.
		f, err := os.OpenFile(path, os.O_RDWR, 0) //nolint:gosec // G304: the operator's configured database path
		if err != nil {
			return fmt.Errorf("userstore: database file %s is not writable: %w", path, err)
		}
		return f.Close()
	case errors.Is(err, fs.ErrNotExist):
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600) //nolint:gosec // G304: the operator's configured database path
		if errors.Is(err, fs.ErrExist) {
			return nil // another process created it a moment ago
		}
		if err != nil {
			return fmt.Errorf("userstore: cannot create database file %s: %w", path, err)
		}
		return f.Close()
	default:
		return fmt.Errorf("userstore: database path %s: %w", path, err)
	}
}

// checkPragmas verifies what the DSN asked for took effect. journal_mode can
// silently stay "delete" on file systems without shared memory; that still
// works (with less concurrency), so it is a warning. foreign_keys off would
// let orphans in, so it is an error.
// firstConnection opens the first connection, which switches a new file
// to WAL. That switch needs the database to itself and, when another
// process or goroutine is opening the same new file, SQLite can answer
// SQLITE_BUSY at once instead of waiting in its busy handler. So a busy
// answer is retried, with a growing pause, until busyTimeout has passed.
func (s *Store) firstConnection(ctx context.Context, busyTimeout time.Duration) error {
	deadline := time.Now().Add(busyTimeout)
	pause := time.Millisecond
	for {
		err := s.db.PingContext(ctx)
		if err == nil || !isBusy(err) || time.Now().After(deadline) {
			return err
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		pause = min(2*pause, 50*time.Millisecond)
	}
}

// isBusy reports whether err is SQLite's SQLITE_BUSY (any extended code).
func isBusy(err error) bool {
	code, ok := sqliteErrCode(err)
	return ok && code&0xff == sqliteBusy
}

func (s *Store) checkPragmas(ctx context.Context) error {
	var mode string
	if err := s.db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return s.wrap("read journal_mode", err)
	}
	if !strings.EqualFold(mode, "wal") {
		s.log.Warn("SQLite is not in WAL mode; concurrent readers will wait for writers",
			zap.String("path", s.path), zap.String("journal_mode", mode))
	}
	var fk int
	if err := s.db.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil {
		return s.wrap("read foreign_keys", err)
	}
	if fk != 1 {
		return fmt.Errorf("userstore: open %s: the SQLite driver did not enable foreign keys", s.path)
	}
	return nil
}

// writeTx runs fn in one write transaction (BEGIN IMMEDIATE on SQLite: the
// write lock is taken up front, so a read-then-write never fails on lock
// upgrade). fn's error rolls everything back: no half-written rows.
func (s *Store) writeTx(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	return s.inTx(ctx, op, true, nil, fn)
}

// inTx is writeTx with first (the migration's schema lock) run before the
// dialect's beginWrite. change false leaves out beginWrite and the stamp's
// advance (quietWrite).
func (s *Store) inTx(ctx context.Context, op string, change bool, first func(context.Context, querier) error, fn func(tx *sql.Tx) error) error {
	defer s.observed(true, time.Now())
	if s.d.serializeWrites {
		select {
		case s.writeSem <- struct{}{}:
			defer func() { <-s.writeSem }()
		case <-ctx.Done():
			return s.wrap(op, ctx.Err())
		}
	}
	tx, err := s.db.BeginTx(ctx, s.d.txOptions)
	if err != nil {
		return s.wrap(op, err)
	}
	if first != nil {
		if err := first(ctx, tx); err != nil {
			_ = tx.Rollback()
			return s.wrap(op, err)
		}
	}
	var count int64
	if change && s.d.beginWrite != nil {
		if count, err = s.d.beginWrite(ctx, tx); err != nil {
			_ = tx.Rollback()
			return s.wrap(op, err)
		}
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return s.wrap(op, err)
	}
	if err := tx.Commit(); err != nil {
		return s.wrap(op, err)
	}
	switch {
	case !change:
	case s.feed != nil:
		s.feed.advance(count) // this instance's own change: seen at once
	default:
		s.watch.localWrites.Add(1)
	}
	return nil
}

// quietWrite is writeTx for a write that is not a change on PostgreSQL:
// the stamp (Changes) of every instance stays as it is, so the caches in
// front of the store keep their entries. Only a write whose effect no
// cache has to see at once may use it. The one such write is a session
// touch: every signed-in user's session is touched once a minute, and
// were touches changes, a few hundred active users would empty the caches
// of every instance several times a second, each refill a round trip to
// the database. A touch only moves a live session's last-seen time and
// idle deadline forward, and a cached session that looks idle-expired is
// read again before it is ended (session.Manager).
//
// On PostgreSQL fn runs in a transaction of the usual isolation without
// the change_counter bump, so without a notification and without the
// write lock, which a single UPDATE that only moves times forward does
// not need (its row lock orders it with any other write of the row). On
// SQLite it is writeTx, a change like any other: data_version moves for
// every commit of another connection, and running touches on the watch's
// own connection would make every request that looks wait behind a touch
// that waits for another process's write lock. A refill there is a local
// read.
func (s *Store) quietWrite(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	return s.inTx(ctx, op, s.feed == nil, nil, fn) // SQLite: a change
}

// q adapts a query to the dialect's placeholders.
func (s *Store) q(query string) string { return s.d.rebind(query) }

// newID returns prefix + 32 hex characters (16 random bytes).
func newID(prefix string) (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("userstore: random id: %w", err)
	}
	return prefix + hex.EncodeToString(b[:]), nil
}

// Times are stored as fixed-width UTC text: sortable as strings, readable in
// the sqlite3 shell, and portable to any SQL database.
const timeLayout = "2006-01-02T15:04:05.000000Z"

func fmtTime(t time.Time) string { return t.UTC().Format(timeLayout) }

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(timeLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("userstore: stored time %q: %w", s, err)
	}
	return t, nil
}
