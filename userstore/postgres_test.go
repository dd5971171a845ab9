package userstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/caddy-cognito/caddy-cognito/internal/pgtest"
)

// PostgreSQL-only tests: what SQLite's file, pragma and lock tests prove
// there, for the shared store. Waits poll with a deadline; none asserts a
// speed.

// openPG opens a store on dsn (a fresh database when dsn is "").
func openPG(t *testing.T, dsn string) *Store {
	t.Helper()
	if dsn == "" {
		dsn = pgtest.Shared(t).NewDatabase(t)
	}
	s, err := Open(context.Background(), Options{Driver: "postgres", DSN: dsn})
	if err != nil {
		t.Fatalf("Open(postgres): %v", err)
	}
	t.Cleanup(func() { closeOK(t, s) })
	return s
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling, bounded by the deadline
	}
}

func TestPostgresSchemaTooNew(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	s := openPG(t, dsn)
	future := SchemaVersion() + 7
	if _, err := s.db.Exec(`UPDATE schema_version SET version = $1`, future); err != nil {
		t.Fatal(err)
	}
	_, err := Open(context.Background(), Options{Driver: "postgres", DSN: dsn})
	if !errors.Is(err, ErrSchemaTooNew) || !strings.Contains(err.Error(), fmt.Sprint(future)) {
		t.Fatalf("Open(newer database) = %v, want ErrSchemaTooNew naming version %d", err, future)
	}
}

// A change through one store (one Caddy instance) moves the stamp of
// another store on the same database, through NOTIFY, even though the
// other is asked with a window of an hour.
func TestPostgresChangesSeenByOtherStores(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Shared(t).NewDatabase(t)
	a, b := openPG(t, dsn), openPG(t, dsn)
	s0, err := a.Changes(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := a.Changes(ctx, time.Hour); s != s0 {
		t.Fatal("stamp moved without a change")
	}
	if _, err := b.CreateUser(ctx, "t", NewUser{Username: "two"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b's write seen by a", func() bool { s, _ := a.Changes(ctx, time.Hour); return s != s0 })
	s1, _ := a.Changes(ctx, time.Hour)
	if s, _ := a.Changes(ctx, time.Hour); s != s1 {
		t.Fatal("stamp moved again without a change")
	}
}

// The stamp is read from memory: with the pool closed under it, Changes
// (any window but 0) still answers, so a signed-in request whose stamp is
// unchanged never touches the database.
func TestPostgresStampNeedsNoQuery(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, Options{Driver: "postgres", DSN: pgtest.Shared(t).NewDatabase(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.feed.stop() }()
	s0, _ := s.Changes(ctx, time.Minute)
	if err := s.db.Close(); err != nil {
		t.Fatal(err)
	}
	if s1, err := s.Changes(ctx, time.Minute); err != nil || s1 != s0 {
		t.Fatalf("Changes with the pool closed = %v, %v; want the same stamp from memory", s1, err)
	}
	if _, err := s.Changes(ctx, 0); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Changes(0) with the pool closed = %v, want ErrUnavailable (0 reads the database)", err)
	}
}

// While the LISTEN connection is down no stamp equals another (no cache
// is trusted); once it is back, re-reading the counter, a change made
// during the outage has moved the stamp.
func TestPostgresStampUnknownWhileFeedIsDown(t *testing.T) {
	ctx := context.Background()
	srv := pgtest.Shared(t)
	dsn := srv.NewDatabase(t)
	a := openPG(t, dsn)
	before, _ := a.Changes(ctx, time.Hour)
	// A connection kept for the write made during the outage.
	other, err := a.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer closeOK(t, other)
	// Block the database for new connections, then cut a's feed: it cannot
	// reconnect until the block is lifted.
	db := dsn[strings.LastIndex(dsn, "/")+1 : strings.Index(dsn, "?")]
	if err := srv.Exec(ctx, `ALTER DATABASE `+db+` WITH ALLOW_CONNECTIONS false`); err != nil {
		t.Fatal(err)
	}
	if err := srv.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = '`+db+`' AND application_name = '`+pgFeedName+`'`); err != nil {
		t.Fatal(err)
	}
	eventually(t, "stamps unknown while the feed is down", func() bool {
		x, _ := a.Changes(ctx, time.Hour)
		y, _ := a.Changes(ctx, time.Hour)
		return x != y && x != before
	})
	// What every write transaction does first, by another instance.
	if _, err := other.ExecContext(ctx, `UPDATE change_counter SET n = n + 1`); err != nil {
		t.Fatal(err)
	}
	if err := srv.Exec(ctx, `ALTER DATABASE `+db+` WITH ALLOW_CONNECTIONS true`); err != nil {
		t.Fatal(err)
	}
	eventually(t, "feed back", func() bool {
		x, _ := a.Changes(ctx, time.Hour)
		y, _ := a.Changes(ctx, time.Hour)
		return x == y
	})
	if after, _ := a.Changes(ctx, time.Hour); after.external <= before.external {
		t.Fatalf("counter after the outage %d, before %d: the change made meanwhile is not seen", after.external, before.external)
	}
}

// An unreachable server is ErrUnavailable, and the error names no password.
func TestPostgresUnreachableIsUnavailable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close() // nothing listens there now
	dsn := "postgres://cognito:s3cret-pw@" + addr + "/db?sslmode=disable"
	_, err = Open(context.Background(), Options{Driver: "postgres", DSN: dsn, BusyTimeout: time.Second})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Open(nothing listening) = %v, want ErrUnavailable", err)
	}
	if strings.Contains(err.Error(), "s3cret-pw") {
		t.Fatalf("error shows the password: %v", err)
	}
}

func TestRedactDSN(t *testing.T) {
	for in, want := range map[string]string{ //nolint:gosec // G101: made-up passwords to mask
		"postgres://u:pw@h:5432/db?sslmode=require":        "postgres://u:xxxxx@h:5432/db?sslmode=require",
		"postgres://u@h/db":                                "postgres://u@h/db",
		"postgres://u@h/db?password=pw":                    "postgres://u@h/db?password=xxxxx",
		"host=h user=u password=pw dbname=d":               "host=h user=u password=xxxxx dbname=d",
		"host=h password='p w\\' x' dbname=d":              "host=h password=xxxxx dbname=d",
		"postgres://u:p%zz@h/db":                           "(a postgres URL that cannot be parsed)",
		"postgresql://admin:hunter2@db.internal/cognito":   "postgresql://admin:xxxxx@db.internal/cognito",
		"host=h user=u PASSWORD = pw dbname=d":             "host=h user=u PASSWORD = xxxxx dbname=d",
		"postgres://u:pw@h1:5432,h2:5432/db?sslmode=allow": "postgres://u:xxxxx@h1:5432,h2:5432/db?sslmode=allow",
	} {
		if got := RedactDSN(in); got != want {
			t.Errorf("RedactDSN(%q) = %q, want %q", in, got, want)
		}
	}
	if _, err := Open(context.Background(), Options{Driver: "postgres", DSN: "postgres://u:pw@h:notaport/db"}); err == nil || strings.Contains(err.Error(), ":pw@") {
		t.Fatalf("Open(bad DSN) = %v; want an error without the password", err)
	}
}

// Quiet periods do not cost the feed its connection: after several
// heartbeats (each a timed-out wait, then a counter read on the same
// connection) it is still on its first connection, live, and its stamp
// has not moved.
func TestPostgresFeedSurvivesHeartbeats(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, Options{Driver: "postgres", DSN: pgtest.Shared(t).NewDatabase(t),
		hooks: &testHooks{feedHeartbeat: 10 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer closeOK(t, s)
	s0, _ := s.Changes(ctx, time.Hour)
	eventually(t, "five heartbeats", func() bool { return s.feed.beats.Load() >= 5 })
	if n := s.feed.connects.Load(); n != 1 || !s.feed.live.Load() {
		t.Fatalf("after %d heartbeats: %d connections, live %v; want 1 and true", s.feed.beats.Load(), n, s.feed.live.Load())
	}
	if s1, _ := s.Changes(ctx, time.Hour); s1 != s0 {
		t.Fatal("stamp moved without a change")
	}
}
