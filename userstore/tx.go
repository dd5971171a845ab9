package userstore

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// Tx is one write transaction of the store, for packages that keep their
// own tables in the same database (the invitations package) and must change
// users, identities and roles in the same transaction as their own rows.
// The schema of those tables is still the store's (migrations.go).
//
// A Tx is only valid inside the function given to Write.
type Tx struct {
	s   *Store
	ctx context.Context
	tx  *sql.Tx
	now time.Time
}

// Write runs fn in one immediate write transaction: committed when fn
// returns nil, rolled back otherwise. Errors are classified like every
// other store error (ErrNotFound, ErrConflict, …, ErrUnavailable).
func (s *Store) Write(ctx context.Context, op string, fn func(*Tx) error) error {
	return s.writeTx(ctx, op, func(tx *sql.Tx) error {
		return fn(&Tx{s: s, ctx: ctx, tx: tx, now: s.nowUTC()})
	})
}

// Read runs a read-only query outside any transaction (placeholders `?`).
func (s *Store) Read(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, s.wrap("read", err)
	}
	return rows, nil
}

// Now is the store clock at the start of the transaction, at storage
// precision.
func (t *Tx) Now() time.Time { return t.now }

// Exec runs a statement (placeholders `?`).
func (t *Tx) Exec(query string, args ...any) (sql.Result, error) {
	return t.tx.ExecContext(t.ctx, t.s.q(query), args...)
}

// QueryRow runs a query returning at most one row (placeholders `?`).
func (t *Tx) QueryRow(query string, args ...any) *sql.Row {
	return t.tx.QueryRowContext(t.ctx, t.s.q(query), args...)
}

// User returns a user with its roles; ErrNotFound when there is none.
func (t *Tx) User(userID string) (*User, error) { return t.s.userTx(t.ctx, t.tx, userID) }

// IdentityOwner returns the id of the user (issuer, sub) is linked to, or
// ErrNotFound.
func (t *Tx) IdentityOwner(issuer, sub string) (string, error) {
	var owner string
	err := t.QueryRow(`SELECT user_id FROM identities WHERE issuer = ? AND sub = ?`, issuer, sub).Scan(&owner)
	if errors.Is(err, sql.ErrNoRows) {
		return "", notFoundf("no user linked to %s / %s", issuer, sub)
	}
	return owner, err
}

// CreateUser is CreateUser inside the transaction.
func (t *Tx) CreateUser(actor string, nu NewUser) (*User, error) {
	return t.s.createUserTx(t.ctx, t.tx, actor, nu)
}

// LinkIdentity is LinkIdentity inside the transaction.
func (t *Tx) LinkIdentity(actor, userID, issuer, sub, provider string) error {
	if err := checkIssuerSub(issuer, sub); err != nil {
		return err
	}
	if err := checkText("provider", provider, maxNameLen, false); err != nil {
		return err
	}
	return t.s.linkIdentityTx(t.ctx, t.tx, actor, userID, issuer, sub, provider)
}

// GrantRoles is GrantRoles inside the transaction.
func (t *Tx) GrantRoles(actor, userID string, roles ...string) error {
	roles, err := cleanRoles(roles)
	if err != nil {
		return err
	}
	return t.s.grantRolesTx(t.ctx, t.tx, actor, userID, roles)
}

// Audit appends an audit row in the transaction.
func (t *Tx) Audit(actor, action, target string, detail map[string]any) error {
	return t.s.insertAudit(t.ctx, t.tx, t.now, actor, action, target, detail)
}

// CheckRoles validates role names as GrantRoles does and returns them
// without duplicates, in their order.
func CheckRoles(roles []string) ([]string, error) { return cleanRoles(roles) }

// CheckEmail validates an email address as users' emails are.
func CheckEmail(email string) error { return checkEmail(email) }

// Invalidf makes an error of the store's invalid-input class (ErrInvalid),
// for packages that extend the store.
func Invalidf(format string, args ...any) error { return invalidf(format, args...) }

// Conflictf makes an error of the store's conflict class (ErrConflict),
// for packages that extend the store.
func Conflictf(format string, args ...any) error { return conflictf(format, args...) }

// NotFoundf makes an error of the store's not-found class (ErrNotFound),
// for packages that extend the store.
func NotFoundf(format string, args ...any) error { return notFoundf(format, args...) }

// FormatTime writes t in the store's text form for times.
func FormatTime(t time.Time) string { return fmtTime(t) }

// ParseTime reads a time in the store's text form, as FormatTime writes it.
func ParseTime(s string) (time.Time, error) { return parseTime(s) }
