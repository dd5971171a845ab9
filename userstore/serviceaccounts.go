package userstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ServiceAccount maps a Cognito app client (client-credentials tokens carry
// sub = client_id and no user) to a local user, so machine callers get roles
// like people do.
type ServiceAccount struct {
	Issuer    string    `json:"issuer"`
	ClientID  string    `json:"client_id"`
	UserID    string    `json:"user_id"`
	Username  string    `json:"username"`
	Active    bool      `json:"active"` // the mapped user's active flag
	CreatedAt time.Time `json:"created_at"`
}

// NewServiceAccount describes a service account to add. Set exactly one of
// UserID (map to an existing user) and User (create a user for it in the same
// transaction).
type NewServiceAccount struct {
	Issuer   string
	ClientID string
	UserID   string
	User     *NewUser
}

// AddServiceAccount maps (issuer, clientID) to a user, creating the user if
// sa.User is set (audit: user.create then service_account.add, one
// transaction). An existing mapping for the pair is ErrConflict.
func (s *Store) AddServiceAccount(ctx context.Context, actor string, sa NewServiceAccount) (*ServiceAccount, error) {
	if err := checkText("issuer", sa.Issuer, maxKeyLen, true); err != nil {
		return nil, s.wrap("add service account", err)
	}
	if err := checkText("client id", sa.ClientID, maxKeyLen, true); err != nil {
		return nil, s.wrap("add service account", err)
	}
	if (sa.UserID == "") == (sa.User == nil) {
		return nil, s.wrap("add service account", invalidf("set exactly one of UserID and User"))
	}
	var out *ServiceAccount
	err := s.writeTx(ctx, "add service account", func(tx *sql.Tx) error {
		var existing string
		err := tx.QueryRowContext(ctx, s.q(`SELECT user_id FROM service_accounts WHERE issuer = ? AND client_id = ?`),
			sa.Issuer, sa.ClientID).Scan(&existing)
		if err == nil {
			return conflictf("client %s of %s is already mapped to user %s", sa.ClientID, sa.Issuer, existing)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		var u *User
		if sa.User != nil {
			if u, err = s.createUserTx(ctx, tx, actor, *sa.User); err != nil {
				return err
			}
		} else if u, err = s.userTx(ctx, tx, sa.UserID); err != nil {
			return err
		}
		now := s.nowUTC()
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO service_accounts (issuer, client_id, user_id, created_at) VALUES (?, ?, ?, ?)`),
			sa.Issuer, sa.ClientID, u.ID, fmtTime(now)); err != nil {
			return err
		}
		out = &ServiceAccount{Issuer: sa.Issuer, ClientID: sa.ClientID, UserID: u.ID, Username: u.Username,
			Active: u.Active, CreatedAt: now}
		return s.insertAudit(ctx, tx, now, actor, ActionServiceAccountAdd, u.ID,
			map[string]any{"issuer": sa.Issuer, "client_id": sa.ClientID})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ListServiceAccounts lists service accounts, of one issuer if issuer != "".
func (s *Store) ListServiceAccounts(ctx context.Context, issuer string) ([]ServiceAccount, error) {
	query := `SELECT sa.issuer, sa.client_id, sa.user_id, u.username, u.active, sa.created_at
		FROM service_accounts sa JOIN users u ON u.id = sa.user_id`
	var args []any
	if issuer != "" {
		query += ` WHERE sa.issuer = ?`
		args = append(args, issuer)
	}
	query += ` ORDER BY sa.issuer, sa.client_id`
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, s.wrap("list service accounts", err)
	}
	defer func() { _ = rows.Close() }() // rows.Err, checked below, reports what went wrong
	var out []ServiceAccount
	for rows.Next() {
		var sa ServiceAccount
		var active int
		var created string
		if err := rows.Scan(&sa.Issuer, &sa.ClientID, &sa.UserID, &sa.Username, &active, &created); err != nil {
			return nil, s.wrap("list service accounts", err)
		}
		sa.Active = active != 0
		if sa.CreatedAt, err = parseTime(created); err != nil {
			return nil, s.wrap("list service accounts", err)
		}
		out = append(out, sa)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap("list service accounts", err)
	}
	return out, nil
}

// RemoveServiceAccount deletes the mapping (not the user) (audit:
// service_account.remove).
func (s *Store) RemoveServiceAccount(ctx context.Context, actor, issuer, clientID string) error {
	return s.writeTx(ctx, "remove service account", func(tx *sql.Tx) error {
		var userID string
		err := tx.QueryRowContext(ctx, s.q(`SELECT user_id FROM service_accounts WHERE issuer = ? AND client_id = ?`),
			issuer, clientID).Scan(&userID)
		if errors.Is(err, sql.ErrNoRows) {
			return notFoundf("no service account for client %s of %s", clientID, issuer)
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM service_accounts WHERE issuer = ? AND client_id = ?`),
			issuer, clientID); err != nil {
			return err
		}
		return s.insertAudit(ctx, tx, s.nowUTC(), actor, ActionServiceAccountRemove, userID,
			map[string]any{"issuer": issuer, "client_id": clientID})
	})
}

// LookupServiceAccount maps a client-credentials token (issuer, client_id)
// to its user, with roles. Same error contract as LookupIdentity: ErrNotFound,
// ErrDisabled (with the user), ErrUnavailable.
func (s *Store) LookupServiceAccount(ctx context.Context, issuer, clientID string) (*User, error) {
	return s.lookupActive(ctx, "lookup service account",
		`u.id = (SELECT user_id FROM service_accounts WHERE issuer = ? AND client_id = ?)`,
		fmt.Sprintf("no service account for client %s of %s", clientID, issuer), issuer, clientID)
}
