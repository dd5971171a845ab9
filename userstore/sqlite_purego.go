//go:build !cgo

package userstore

import (
	"errors"
	"fmt"

	"modernc.org/sqlite"
)

// Without cgo (plain `xcaddy build`): modernc.org/sqlite, SQLite translated to Go.
const sqliteDriverName = "sqlite"

// sqliteDSNParams: modernc runs busy_timeout before every other _pragma, so the
// journal_mode switch waits for a competing process. _txlock=immediate makes
// every BeginTx a BEGIN IMMEDIATE.
func sqliteDSNParams(busyMS int) string {
	return fmt.Sprintf("_pragma=busy_timeout(%d)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate", busyMS)
}

// sqliteErrCode returns the SQLite result code carried by err.
func sqliteErrCode(err error) (int, bool) {
	var e *sqlite.Error
	if errors.As(err, &e) && e != nil {
		return e.Code(), true
	}
	return 0, false
}
