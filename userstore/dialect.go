package userstore

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// querier is what both *sql.DB and *sql.Tx offer; read helpers take it so they
// work inside and outside a transaction.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// dialect is everything that differs between SQL databases. The Store's
// queries are written once, with `?` placeholders, in the subset SQLite and
// PostgreSQL share; a new backend is a new dialect value. See the package
// documentation ("The PostgreSQL seam").
type dialect struct {
	name string
	// driverName is the database/sql driver to open.
	driverName string
	// dsn builds the data source name for a file path (SQLite) or URL.
	dsn func(path string, o *Options) string
	// numberedPlaceholders: rewrite `?` to `$1, $2, …` (PostgreSQL).
	numberedPlaceholders bool
	// autoID is the column definition of an auto-increment primary key,
	// substituted for {{AUTOID}} in migrations.
	autoID string
	// columnTypes rename column types of the migrations' portable text
	// (BLOB → BYTEA) as whole words.
	columnTypes map[string]string
	// txOptions are the write transactions' options (nil: the driver's).
	txOptions *sql.TxOptions
	// serializeWrites: SQLite has one writer at a time; queueing in-process
	// writers on a Go semaphore is fairer than SQLite's sleeping busy handler,
	// which can starve a waiter under heavy contention. busy_timeout still
	// covers other processes.
	serializeWrites bool
	// readVersion and writeVersion keep the schema version.
	readVersion  func(ctx context.Context, q querier) (int, error)
	writeVersion func(ctx context.Context, q querier, v int) error
	// lockSchema is called first thing in the migration transaction. SQLite
	// needs nothing (BEGIN IMMEDIATE already holds the write lock); PostgreSQL
	// takes pg_advisory_xact_lock and creates its bookkeeping tables.
	lockSchema func(ctx context.Context, q querier) error
	// beginWrite, when set, runs first in every write transaction (after
	// lockSchema in a migration): PostgreSQL bumps its change counter there,
	// which also queues the transaction behind every other writer, and
	// returns the new count (published at commit, so the stamp moves at
	// once and the transaction's own notification later moves it no more).
	beginWrite func(ctx context.Context, q querier) (int64, error)
	// classify sorts driver errors into conflict / unavailable / other.
	classify func(err error) errClass
}

// rebind adapts a `?`-placeholder query to the dialect. Queries never contain
// `?` inside string literals, so a plain scan is enough.
func (d *dialect) rebind(q string) string {
	if !d.numberedPlaceholders || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// ddl adapts a migration statement: {{AUTOID}} and the column types.
func (d *dialect) ddl(stmt string) string {
	stmt = strings.ReplaceAll(stmt, "{{AUTOID}}", d.autoID)
	for from, to := range d.columnTypes {
		stmt = regexp.MustCompile(`\b`+from+`\b`).ReplaceAllString(stmt, to)
	}
	return stmt
}

// sqliteDialect is shared by both SQLite drivers; the build-tagged files
// supply sqliteDriverName, sqliteDSNParams and sqliteErrCode.
var sqliteDialect = &dialect{
	name:            "sqlite",
	driverName:      sqliteDriverName,
	dsn:             sqliteDSN,
	autoID:          "INTEGER PRIMARY KEY",
	serializeWrites: true,
	readVersion: func(ctx context.Context, q querier) (int, error) {
		var v int
		err := q.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v)
		return v, err
	},
	writeVersion: func(ctx context.Context, q querier, v int) error {
		// PRAGMA takes no placeholders; v is an int we produced.
		_, err := q.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v))
		return err
	},
	lockSchema: func(context.Context, querier) error { return nil },
	classify:   sqliteClassify,
}

// SQLite primary result codes we act on (https://sqlite.org/rescode.html).
const (
	sqliteBusy       = 5
	sqliteLocked     = 6
	sqliteNoMem      = 7
	sqliteReadOnly   = 8
	sqliteIOErr      = 10
	sqliteCorrupt    = 11
	sqliteFull       = 13
	sqliteCantOpen   = 14
	sqliteProtocol   = 15
	sqliteConstraint = 19
	sqliteNotADB     = 26

	sqliteConstraintPrimaryKey = 1555
	sqliteConstraintUnique     = 2067
)

func sqliteClassify(err error) errClass {
	code, ok := sqliteErrCode(err)
	if !ok {
		return classOther
	}
	switch code & 0xff {
	case sqliteConstraint:
		if code == sqliteConstraintUnique || code == sqliteConstraintPrimaryKey ||
			strings.Contains(err.Error(), "UNIQUE constraint failed") {
			return classConflict
		}
	case sqliteBusy, sqliteLocked, sqliteNoMem, sqliteReadOnly, sqliteIOErr,
		sqliteCorrupt, sqliteFull, sqliteCantOpen, sqliteProtocol, sqliteNotADB:
		return classUnavailable
	}
	return classOther
}

// sqliteDSN builds a file: URI for path with the driver's connection
// parameters. Characters SQLite's URI parser treats specially are escaped.
func sqliteDSN(path string, o *Options) string {
	p := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	dsn := "file:" + p + "?" + sqliteDSNParams(int(o.BusyTimeout.Milliseconds()))
	if o.extraDSN != "" {
		dsn += "&" + o.extraDSN
	}
	return dsn
}
