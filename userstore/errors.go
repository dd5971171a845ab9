package userstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Callers test them with errors.Is; the wrapped message says
// what was missing or duplicated.
var (
	// ErrNotFound: no such user, identity, or service account. Only returned
	// when the database answered; storage failures are ErrUnavailable.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a duplicate username, email, identity or service account
	// (usernames and emails share one namespace), or a GetUser reference
	// that names more than one user ("ambiguous reference").
	ErrConflict = errors.New("conflict")
	// ErrInvalid: an argument failed validation (empty username, bad role name…).
	ErrInvalid = errors.New("invalid argument")
	// ErrDisabled: LookupIdentity/LookupServiceAccount found the user but it is
	// disabled. The user is returned alongside so the caller can log who it was;
	// a caller that only checks err denies access, which is the safe default.
	ErrDisabled = errors.New("user disabled")
	// ErrUnavailable: the database cannot serve the request right now (locked
	// past the busy timeout, disk full, read-only, I/O error, closed). The HTTP
	// layer answers 503 and never treats it as "unknown user".
	ErrUnavailable = errors.New("identity store unavailable")
	// ErrSchemaTooNew: the database was migrated by a newer build.
	ErrSchemaTooNew = errors.New("database schema is newer than this build")
)

// errClass is how a dialect sorts driver errors.
type errClass int

const (
	classOther errClass = iota
	classConflict
	classUnavailable
)

// wrap turns an error from database/sql or the driver into one of ours,
// prefixed with the operation. Errors that already carry a sentinel pass
// through with the prefix only.
func (s *Store) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	for _, sentinel := range []error{ErrNotFound, ErrConflict, ErrInvalid, ErrDisabled, ErrUnavailable, ErrSchemaTooNew} {
		if errors.Is(err, sentinel) {
			if strings.HasPrefix(err.Error(), "userstore: ") {
				return err // already wrapped and prefixed (e.g. ErrSchemaTooNew)
			}
			return fmt.Errorf("userstore: %s: %w", op, err)
		}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("userstore: %s: %w", op, err)
	}
	switch s.d.classify(err) {
	case classConflict:
		return fmt.Errorf("userstore: %s: %w: %w", op, ErrConflict, err)
	case classUnavailable:
		return fmt.Errorf("userstore: %s: %w: %w", op, ErrUnavailable, err)
	}
	// database/sql's own "the pool is gone" errors: the store cannot answer.
	if errors.Is(err, sql.ErrConnDone) || strings.Contains(err.Error(), "sql: database is closed") {
		return fmt.Errorf("userstore: %s: %w: %w", op, ErrUnavailable, err)
	}
	return fmt.Errorf("userstore: %s: %w", op, err)
}

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}

func notFoundf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrNotFound}, args...)...)
}

func conflictf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrConflict}, args...)...)
}
