package userstore

import (
	"context"
	"database/sql"
	"slices"
	"sort"
	"time"
)

// Role sources: how a user came to hold a role (user_roles.source).
const (
	// SourceLocal: granted by hand (CLI, admin API) or by an invitation.
	SourceLocal = "local"
	// SourceProvider: granted because the provider says so (a Cognito
	// group or claim mapped by the `roles` block); SyncProviderRoles
	// adds and removes these, and only these.
	SourceProvider = "provider"
)

// GrantRoles gives userID the roles it does not hold by hand yet and
// writes one role.grant audit row listing the roles actually added (none
// added: no row). Role names are letters, digits and _ - . : / so they can
// travel in comma-joined headers.
func (s *Store) GrantRoles(ctx context.Context, actor, userID string, roles ...string) error {
	roles, err := cleanRoles(roles)
	if err != nil {
		return s.wrap("grant roles", err)
	}
	return s.writeTx(ctx, "grant roles", func(tx *sql.Tx) error {
		return s.grantRolesTx(ctx, tx, actor, userID, roles)
	})
}

// grantRolesTx is GrantRoles inside a transaction; roles are already clean.
func (s *Store) grantRolesTx(ctx context.Context, tx *sql.Tx, actor, userID string, roles []string) error {
	if err := s.userExists(ctx, tx, userID); err != nil {
		return err
	}
	now := s.nowUTC()
	added, err := s.insertRoles(ctx, tx, userID, SourceLocal, roles, now)
	if err != nil || len(added) == 0 {
		return err
	}
	return s.insertAudit(ctx, tx, now, actor, ActionRoleGrant, userID, map[string]any{"roles": added})
}

// insertRoles adds the (role, source) grants userID does not have yet and
// returns the roles added, sorted.
func (s *Store) insertRoles(ctx context.Context, tx *sql.Tx, userID, source string, roles []string, now time.Time) ([]string, error) {
	var added []string
	for _, r := range roles {
		res, err := tx.ExecContext(ctx, s.q(`INSERT INTO user_roles (user_id, role, source, created_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (user_id, role, source) DO NOTHING`), userID, r, source, fmtTime(now))
		if err != nil {
			return nil, err
		}
		if n, err := res.RowsAffected(); err != nil {
			return nil, err
		} else if n > 0 {
			added = append(added, r)
		}
	}
	sort.Strings(added)
	return added, nil
}

// deleteRoles removes the (role, source) grants of userID and returns the
// roles removed, sorted.
func (s *Store) deleteRoles(ctx context.Context, tx *sql.Tx, userID, source string, roles []string) ([]string, error) {
	var removed []string
	for _, r := range roles {
		res, err := tx.ExecContext(ctx, s.q(`DELETE FROM user_roles WHERE user_id = ? AND role = ? AND source = ?`), userID, r, source)
		if err != nil {
			return nil, err
		}
		if n, err := res.RowsAffected(); err != nil {
			return nil, err
		} else if n > 0 {
			removed = append(removed, r)
		}
	}
	sort.Strings(removed)
	return removed, nil
}

// RevokeRoles removes hand-granted roles from userID and writes one
// role.revoke audit row listing the roles actually removed (none removed:
// no row). A role the user holds only from the provider cannot be revoked
// here (ErrConflict naming it): it would come back at the next sign-in, so
// the operator is told to change the Cognito groups or claims instead. A
// role held both ways loses its hand grant and is still held.
func (s *Store) RevokeRoles(ctx context.Context, actor, userID string, roles ...string) error {
	roles, err := cleanRoles(roles)
	if err != nil {
		return s.wrap("revoke roles", err)
	}
	return s.writeTx(ctx, "revoke roles", func(tx *sql.Tx) error {
		u, err := s.userTx(ctx, tx, userID)
		if err != nil {
			return err
		}
		for _, r := range roles {
			if !slices.Contains(u.LocalRoles, r) && slices.Contains(u.ProviderRoles, r) {
				return conflictf("role %q of user %s is granted by the provider (the roles block maps a Cognito group or claim to it), not by hand: change the user's groups or claims in Cognito", r, userID)
			}
		}
		removed, err := s.deleteRoles(ctx, tx, userID, SourceLocal, roles)
		if err != nil || len(removed) == 0 {
			return err
		}
		return s.insertAudit(ctx, tx, s.nowUTC(), actor, ActionRoleRevoke, userID, map[string]any{"roles": removed})
	})
}

// SyncProviderRoles makes want the provider-granted roles of userID: the
// ones missing are added and the ones no longer wanted removed, with one
// role.grant and one role.revoke audit row (detail source "provider");
// hand-granted roles are never touched. It reports whether anything
// changed. When the stored set is already want, nothing is written (a
// read, no transaction), so callers may call it at every sign-in; callers
// on a hot path compare with User.ProviderRoles first.
func (s *Store) SyncProviderRoles(ctx context.Context, actor, userID string, want []string) (bool, error) {
	want, err := cleanRoles(want)
	if err != nil {
		return false, s.wrap("sync provider roles", err)
	}
	sort.Strings(want)
	u, err := s.GetUserByID(ctx, userID)
	if err != nil {
		return false, err
	}
	if slices.Equal(u.ProviderRoles, want) {
		return false, nil
	}
	changed := false
	err = s.writeTx(ctx, "sync provider roles", func(tx *sql.Tx) error {
		u, err := s.userTx(ctx, tx, userID) // again, under the write lock
		if err != nil {
			return err
		}
		var gone []string
		for _, r := range u.ProviderRoles {
			if !slices.Contains(want, r) {
				gone = append(gone, r)
			}
		}
		now := s.nowUTC()
		added, err := s.insertRoles(ctx, tx, userID, SourceProvider, want, now)
		if err != nil {
			return err
		}
		removed, err := s.deleteRoles(ctx, tx, userID, SourceProvider, gone)
		if err != nil {
			return err
		}
		if len(added) > 0 {
			if err := s.insertAudit(ctx, tx, now, actor, ActionRoleGrant, userID, map[string]any{"roles": added, "source": SourceProvider}); err != nil {
				return err
			}
		}
		if len(removed) > 0 {
			if err := s.insertAudit(ctx, tx, now, actor, ActionRoleRevoke, userID, map[string]any{"roles": removed, "source": SourceProvider}); err != nil {
				return err
			}
		}
		changed = len(added)+len(removed) > 0
		return nil
	})
	return changed, err
}

func (s *Store) userExists(ctx context.Context, q querier, userID string) error {
	var one int
	err := q.QueryRowContext(ctx, s.q(`SELECT 1 FROM users WHERE id = ?`), userID).Scan(&one)
	if err == sql.ErrNoRows {
		return notFoundf("no user with id %q", userID)
	}
	return err
}
