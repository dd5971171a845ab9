package userstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// AuditEvent is one row of the append-only audit log. Detail is a JSON
// object (text) with the action's parameters, e.g. {"roles":["editor"]}.
type AuditEvent struct {
	ID     int64     `json:"id"`
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`  // who did it: an admin name, "system", "cli:<user>", a user id
	Action string    `json:"action"` // e.g. user.create, user.disable, role.grant, identity.link
	Target string    `json:"target"` // usually the user id the action is about
	Detail string    `json:"detail"`
}

// Audit actions written by this package.
const (
	ActionSchemaMigrate        = "schema.migrate"
	ActionUserCreate           = "user.create"
	ActionUserUpdate           = "user.update"
	ActionUserEnable           = "user.enable"
	ActionUserDisable          = "user.disable"
	ActionUserLogin            = "user.login"
	ActionRoleGrant            = "role.grant"
	ActionRoleRevoke           = "role.revoke"
	ActionIdentityLink         = "identity.link"
	ActionIdentityUnlink       = "identity.unlink"
	ActionIdentityLinkRefused  = "identity.link_refused"
	ActionServiceAccountAdd    = "service_account.add"
	ActionServiceAccountRemove = "service_account.remove"
)

// insertAudit appends an audit row inside the caller's transaction, so the
// row exists exactly when the change it describes does.
func (s *Store) insertAudit(ctx context.Context, tx *sql.Tx, at time.Time, actor, action, target string, detail any) error {
	if detail == nil {
		detail = map[string]any{}
	}
	b, err := json.Marshal(detail)
	if err != nil {
		return fmt.Errorf("audit detail: %w", err)
	}
	if actor == "" {
		actor = "unknown"
	}
	_, err = tx.ExecContext(ctx, s.q(`INSERT INTO audit_log (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)`),
		fmtTime(at), actor, action, target, string(b))
	return err
}

// Audit returns the newest limit audit entries, newest first. limit <= 0
// means 100.
func (s *Store) Audit(ctx context.Context, limit int) ([]AuditEvent, error) {
	return s.audit(ctx, "", limit)
}

// AuditFor returns the newest limit audit entries about target (usually a
// user id), newest first.
func (s *Store) AuditFor(ctx context.Context, target string, limit int) ([]AuditEvent, error) {
	if target == "" {
		return nil, s.wrap("audit", invalidf("empty target"))
	}
	return s.audit(ctx, target, limit)
}

func (s *Store) audit(ctx context.Context, target string, limit int) ([]AuditEvent, error) {
	if limit <= 0 {
		limit = 100
	}
	query := `SELECT id, at, actor, action, target, detail FROM audit_log`
	args := []any{}
	if target != "" {
		query += ` WHERE target = ?`
		args = append(args, target)
	}
	query += ` ORDER BY id DESC LIMIT ?`
	args = append(args, limit)
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, s.wrap("audit", err)
	}
	defer func() { _ = rows.Close() }() // rows.Err, checked below, reports what went wrong
	var out []AuditEvent
	for rows.Next() {
		var e AuditEvent
		var at string
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Target, &e.Detail); err != nil {
			return nil, s.wrap("audit", err)
		}
		if e.At, err = parseTime(at); err != nil {
			return nil, s.wrap("audit", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap("audit", err)
	}
	return out, nil
}
