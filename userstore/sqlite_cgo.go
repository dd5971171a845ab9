//go:build cgo

package userstore

import (
	"errors"
	"fmt"

	"github.com/mattn/go-sqlite3"
)

// With cgo: github.com/mattn/go-sqlite3, the reference SQLite build.
const sqliteDriverName = "sqlite3"

// sqliteDSNParams: mattn applies _busy_timeout right after opening, before the
// other pragmas, so the journal_mode switch on a fresh file waits instead of
// failing when another process holds the lock. _txlock=immediate makes every
// BeginTx a BEGIN IMMEDIATE.
func sqliteDSNParams(busyMS int) string {
	return fmt.Sprintf("_busy_timeout=%d&_journal_mode=WAL&_foreign_keys=on&_synchronous=NORMAL&_txlock=immediate", busyMS)
}

// sqliteErrCode returns the extended SQLite result code carried by err.
func sqliteErrCode(err error) (int, bool) {
	var e sqlite3.Error
	if errors.As(err, &e) {
		return int(e.ExtendedCode), true
	}
	var pe *sqlite3.Error
	if errors.As(err, &pe) && pe != nil {
		return int(pe.ExtendedCode), true
	}
	return 0, false
}
