package userstore

import (
	"context"
	"database/sql"
	"sort"
)

// GrantRoles gives userID the roles it does not hold yet and writes one
// role.grant audit row listing the roles actually added (none added: no row).
// Role names are letters, digits and _ - . : / so they can travel in
// comma-joined headers.
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
	var added []string
	for _, r := range roles {
		res, err := tx.ExecContext(ctx, s.q(`INSERT INTO user_roles (user_id, role, created_at) VALUES (?, ?, ?)
			ON CONFLICT (user_id, role) DO NOTHING`), userID, r, fmtTime(now))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n > 0 {
			added = append(added, r)
		}
	}
	if len(added) == 0 {
		return nil
	}
	sort.Strings(added)
	return s.insertAudit(ctx, tx, now, actor, ActionRoleGrant, userID, map[string]any{"roles": added})
}

// RevokeRoles removes roles from userID and writes one role.revoke audit row
// listing the roles actually removed (none removed: no row).
func (s *Store) RevokeRoles(ctx context.Context, actor, userID string, roles ...string) error {
	roles, err := cleanRoles(roles)
	if err != nil {
		return s.wrap("revoke roles", err)
	}
	return s.writeTx(ctx, "revoke roles", func(tx *sql.Tx) error {
		if err := s.userExists(ctx, tx, userID); err != nil {
			return err
		}
		var removed []string
		for _, r := range roles {
			res, err := tx.ExecContext(ctx, s.q(`DELETE FROM user_roles WHERE user_id = ? AND role = ?`), userID, r)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n > 0 {
				removed = append(removed, r)
			}
		}
		if len(removed) == 0 {
			return nil
		}
		sort.Strings(removed)
		return s.insertAudit(ctx, tx, s.nowUTC(), actor, ActionRoleRevoke, userID, map[string]any{"roles": removed})
	})
}

func (s *Store) userExists(ctx context.Context, q querier, userID string) error {
	var one int
	err := q.QueryRowContext(ctx, s.q(`SELECT 1 FROM users WHERE id = ?`), userID).Scan(&one)
	if err == sql.ErrNoRows {
		return notFoundf("no user with id %q", userID)
	}
	return err
}
