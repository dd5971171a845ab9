package userstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Identity ties an IdP subject to a local user.
type Identity struct {
	Issuer    string    `json:"issuer"` // the token's iss, exactly
	Sub       string    `json:"sub"`    // the token's sub, exactly
	UserID    string    `json:"user_id"`
	Provider  string    `json:"provider,omitempty"` // federated provider name (Cognito identities[0].providerName), "" for native users
	CreatedAt time.Time `json:"created_at"`
}

func checkIssuerSub(issuer, sub string) error {
	if err := checkText("issuer", issuer, maxKeyLen, true); err != nil {
		return err
	}
	return checkText("sub", sub, maxKeyLen, true)
}

// LinkIdentity ties (issuer, sub) to userID (audit: identity.link). Linking
// an identity to the user it already belongs to is a no-op; linking it to
// another user is ErrConflict. Issuer and sub are compared exactly.
func (s *Store) LinkIdentity(ctx context.Context, actor, userID, issuer, sub, provider string) error {
	if err := checkIssuerSub(issuer, sub); err != nil {
		return s.wrap("link identity", err)
	}
	if err := checkText("provider", provider, maxNameLen, false); err != nil {
		return s.wrap("link identity", err)
	}
	return s.writeTx(ctx, "link identity", func(tx *sql.Tx) error {
		return s.linkIdentityTx(ctx, tx, actor, userID, issuer, sub, provider)
	})
}

// linkIdentityTx is LinkIdentity inside a transaction, arguments checked.
func (s *Store) linkIdentityTx(ctx context.Context, tx *sql.Tx, actor, userID, issuer, sub, provider string) error {
	if err := s.userExists(ctx, tx, userID); err != nil {
		return err
	}
	var owner string
	err := tx.QueryRowContext(ctx, s.q(`SELECT user_id FROM identities WHERE issuer = ? AND sub = ?`), issuer, sub).Scan(&owner)
	switch {
	case err == nil && owner == userID:
		return nil
	case err == nil:
		return conflictf("identity %s / %s is linked to another user (%s)", issuer, sub, owner)
	case !errors.Is(err, sql.ErrNoRows):
		return err
	}
	now := s.nowUTC()
	if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO identities (issuer, sub, user_id, provider, created_at) VALUES (?, ?, ?, ?, ?)`),
		issuer, sub, userID, provider, fmtTime(now)); err != nil {
		return err
	}
	return s.insertAudit(ctx, tx, now, actor, ActionIdentityLink, userID,
		map[string]any{"issuer": issuer, "sub": sub, "provider": provider})
}

// UnlinkIdentity removes the (issuer, sub) link (audit: identity.unlink).
func (s *Store) UnlinkIdentity(ctx context.Context, actor, issuer, sub string) error {
	return s.writeTx(ctx, "unlink identity", func(tx *sql.Tx) error {
		var owner string
		err := tx.QueryRowContext(ctx, s.q(`SELECT user_id FROM identities WHERE issuer = ? AND sub = ?`), issuer, sub).Scan(&owner)
		if errors.Is(err, sql.ErrNoRows) {
			return notFoundf("no identity %s / %s", issuer, sub)
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM identities WHERE issuer = ? AND sub = ?`), issuer, sub); err != nil {
			return err
		}
		return s.insertAudit(ctx, tx, s.nowUTC(), actor, ActionIdentityUnlink, owner,
			map[string]any{"issuer": issuer, "sub": sub})
	})
}

// ListIdentities returns the identities linked to userID, oldest first.
func (s *Store) ListIdentities(ctx context.Context, userID string) ([]Identity, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT issuer, sub, user_id, provider, created_at FROM identities
		WHERE user_id = ? ORDER BY created_at, issuer, sub`), userID)
	if err != nil {
		return nil, s.wrap("list identities", err)
	}
	defer func() { _ = rows.Close() }() // rows.Err, checked below, reports what went wrong
	var out []Identity
	for rows.Next() {
		var id Identity
		var created string
		if err := rows.Scan(&id.Issuer, &id.Sub, &id.UserID, &id.Provider, &created); err != nil {
			return nil, s.wrap("list identities", err)
		}
		if id.CreatedAt, err = parseTime(created); err != nil {
			return nil, s.wrap("list identities", err)
		}
		out = append(out, id)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap("list identities", err)
	}
	return out, nil
}

// LookupIdentity maps a verified token's (iss, sub) to the local user, with
// roles. Unknown identity: ErrNotFound (the caller may then try admission
// policies). Disabled user: the user AND an error wrapping ErrDisabled, so a
// caller that only checks err denies access. Storage trouble: ErrUnavailable.
func (s *Store) LookupIdentity(ctx context.Context, issuer, sub string) (*User, error) {
	return s.lookupActive(ctx, "lookup identity",
		`u.id = (SELECT user_id FROM identities WHERE issuer = ? AND sub = ?)`,
		fmt.Sprintf("no user linked to %s / %s", issuer, sub), issuer, sub)
}

// lookupActive returns the one user where selects, with the lookups'
// error contract: ErrNotFound (with notFound as the message), ErrDisabled
// together with the user, ErrUnavailable for storage trouble.
func (s *Store) lookupActive(ctx context.Context, op, where, notFound string, args ...any) (*User, error) {
	defer s.observed(false, time.Now())
	users, err := s.queryUsers(ctx, s.db, where, args...)
	if err != nil {
		return nil, s.wrap(op, err)
	}
	if len(users) == 0 {
		return nil, s.wrap(op, notFoundf("%s", notFound))
	}
	u := &users[0]
	if !u.Active {
		return u, s.wrap(op, fmt.Errorf("%w: %s (%s)", ErrDisabled, u.Username, u.ID))
	}
	return u, nil
}
