// Package userstore is the Caddy-free identity store of caddy-cognito.
//
// Cognito (or any OIDC provider) says who someone is; this package says who
// they are on this site: a local user with an opaque id, a username, an email,
// roles, an active flag, the IdP identities (issuer + sub) that sign in as that
// user, and the service accounts (issuer + app client id) that client-credentials
// tokens map to. Every mutation writes an audit row in the same transaction.
//
// It never imports Caddy. The Caddy app opens one *Store per database file
// (shared across config reloads with caddy.UsagePool) and hands it to the
// handlers; the CLI opens the same file directly.
//
// # Errors
//
// Every error is wrapped so errors.Is works with the sentinels: ErrNotFound,
// ErrConflict (duplicate username, email, identity, service account; an
// ambiguous GetUser reference),
// ErrInvalid (a bad argument), ErrDisabled (a lookup found a disabled user),
// ErrUnavailable (database locked, full, read-only, I/O error: answer 503) and
// ErrSchemaTooNew. A lookup that fails for a storage reason is ErrUnavailable,
// never ErrNotFound, so a broken disk cannot turn a known user into a
// "new user".
//
// # SQLite drivers and build tags
//
// The logical driver is "sqlite". Two tiny files pick the implementation:
//
//	sqlite_cgo.go     //go:build cgo    github.com/mattn/go-sqlite3
//	sqlite_purego.go  //go:build !cgo   modernc.org/sqlite (what plain xcaddy builds get)
//
// Each supplies the database/sql driver name, the DSN parameters that give every
// pooled connection WAL, busy_timeout, foreign_keys=ON, synchronous=NORMAL and
// BEGIN IMMEDIATE transactions, and a function that extracts the SQLite result
// code from the driver's error type. Everything else is shared. The test suite
// runs against both: `go test ./userstore/` and `CGO_ENABLED=0 go test ./userstore/`.
//
// # The PostgreSQL seam
//
// All SQL goes through (*Store).db with a *dialect (dialect.go). The dialect
// owns everything that differs between databases: the driver name and DSN,
// placeholders (rebind turns `?` into `$1…`), the auto-increment column type,
// how the schema version is read and written (SQLite: PRAGMA user_version;
// PostgreSQL: a one-row table under pg_advisory_xact_lock), how driver errors
// map to ErrConflict/ErrUnavailable, and whether in-process writers must be
// serialised. The queries themselves stick to the portable subset: no
// RETURNING, upserts as INSERT … ON CONFLICT DO NOTHING, case-insensitive
// matching through *_lower columns computed in Go by FoldKey (ASCII letters
// only; never the database's lower(), whose rule differs between databases
// and builds), times as fixed-width UTC text. A PostgreSQL backend is a new
// dialect value plus a driver import, not a rewrite: postgres.go is that
// value (pgx's stdlib driver), pgfeed.go the LISTEN/NOTIFY change feed.
//
// # PostgreSQL
//
// Driver "postgres" with a DSN opens the store several Caddy instances
// (and the CLI) share. Write transactions bump a change counter first:
// its row lock serialises writers across instances exactly as SQLite's
// write lock does, so every read-then-write step (one invitation accept
// wins, one identity gets one user, one session refresh is claimed) keeps
// its meaning. The bump's NOTIFY keeps every instance's change stamp (an
// atomic, no query per request) current within the notification's travel
// time; while the listening connection is down the stamp is "unknown"
// (never equal to another), so no cache is trusted until it is back and
// has re-read the counter.
//
// One write is not a change here: a session touch (TouchSession, see
// quietWrite), which only moves a live session's last-seen time and idle
// deadline forward and runs once a minute for every signed-in user, bumps
// no counter, takes no write lock and sends no notification. (On SQLite it
// is a change like any other write.)
//
// # Usernames and emails
//
// A user is referred to by its id, its username or its email (GetUser), so
// usernames and emails form one namespace: no username equals another
// user's email or looks like a user id, and no email equals another user's
// username. They compare by FoldKey: A-Z match a-z, every other character
// matches only itself (no Unicode case folding, which would let the Kelvin
// sign stand for "k").
//
// # Migrations
//
// migrations.go holds one ordered list; adding a table (sessions, invitations)
// is one new entry, in the SQL both databases share. Open takes the write
// lock (SQLite: BEGIN IMMEDIATE; PostgreSQL: pg_advisory_xact_lock) before
// it reads the version it migrates from, so two processes starting together
// migrate once, and it refuses (ErrSchemaTooNew) a database written by a
// newer build.
package userstore
