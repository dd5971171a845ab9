package userstore

import (
	"context"
	"database/sql"
	"fmt"

	"go.uber.org/zap"
)

// migration is one step of the schema. Version i+1 is migrations[i]: the
// list is append-only, entries are never edited once released, and adding a
// table is one new entry at the end, for example:
//
//	{version: 2, name: "sessions", stmts: []string{`CREATE TABLE sessions (…)`}},
//	{version: 3, name: "invitations", stmts: []string{`CREATE TABLE invitations (…)`}},
//
// Statements use the portable SQL subset, the same text for every
// database; {{AUTOID}} becomes the dialect's auto-increment primary key and
// BLOB its byte-string type (dialect.ddl). apply, when set, runs after the statements in
// the same transaction, for a step SQL cannot say the same way on every
// database (recomputing keys with a Go rule).
type migration struct {
	version int
	name    string
	stmts   []string
	apply   func(ctx context.Context, s *Store, tx *sql.Tx) error
}

var migrations = []migration{
	{
		version: 1,
		name:    "users, identities, roles, service accounts, audit log",
		stmts: []string{
			// username_lower / email_lower are the Go-lower-cased forms used for
			// lookups and uniqueness; username / email keep the original case.
			// email_lower is NULL when there is no email (NULLs never collide).
			`CREATE TABLE users (
				id             TEXT    NOT NULL PRIMARY KEY,
				username       TEXT    NOT NULL,
				username_lower TEXT    NOT NULL,
				email          TEXT    NOT NULL DEFAULT '',
				email_lower    TEXT,
				given_name     TEXT    NOT NULL DEFAULT '',
				family_name    TEXT    NOT NULL DEFAULT '',
				active         INTEGER NOT NULL DEFAULT 1,
				created_at     TEXT    NOT NULL,
				updated_at     TEXT    NOT NULL,
				last_login_at  TEXT
			)`,
			`CREATE UNIQUE INDEX users_username_lower ON users (username_lower)`,
			`CREATE UNIQUE INDEX users_email_lower ON users (email_lower)`,
			`CREATE TABLE identities (
				issuer     TEXT NOT NULL,
				sub        TEXT NOT NULL,
				user_id    TEXT NOT NULL REFERENCES users (id),
				provider   TEXT NOT NULL DEFAULT '',
				created_at TEXT NOT NULL,
				PRIMARY KEY (issuer, sub)
			)`,
			`CREATE INDEX identities_user_id ON identities (user_id)`,
			`CREATE TABLE user_roles (
				user_id    TEXT NOT NULL REFERENCES users (id),
				role       TEXT NOT NULL,
				created_at TEXT NOT NULL,
				PRIMARY KEY (user_id, role)
			)`,
			`CREATE INDEX user_roles_role ON user_roles (role)`,
			`CREATE TABLE service_accounts (
				issuer     TEXT NOT NULL,
				client_id  TEXT NOT NULL,
				user_id    TEXT NOT NULL REFERENCES users (id),
				created_at TEXT NOT NULL,
				PRIMARY KEY (issuer, client_id)
			)`,
			`CREATE INDEX service_accounts_user_id ON service_accounts (user_id)`,
			`CREATE TABLE audit_log (
				id     {{AUTOID}},
				at     TEXT NOT NULL,
				actor  TEXT NOT NULL,
				action TEXT NOT NULL,
				target TEXT NOT NULL DEFAULT '',
				detail TEXT NOT NULL DEFAULT '{}'
			)`,
			`CREATE INDEX audit_log_target ON audit_log (target)`,
		},
	},
	{
		version: 2,
		name:    "sessions",
		stmts: []string{
			// Server-side browser sessions (sessions.go). id_hash is the hex
			// SHA-256 of the cookie value: the cookie itself is never stored.
			// refresh_token is ciphertext made by the caller (BLOB here; a
			// PostgreSQL dialect maps it to BYTEA). Times are fixed-width UTC
			// text like every other table.
			`CREATE TABLE sessions (
				id_hash             TEXT NOT NULL PRIMARY KEY,
				user_id             TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
				issuer              TEXT NOT NULL,
				sub                 TEXT NOT NULL,
				created_at          TEXT NOT NULL,
				last_seen_at        TEXT NOT NULL,
				idle_expires_at     TEXT NOT NULL,
				absolute_expires_at TEXT NOT NULL,
				access_expires_at   TEXT NOT NULL,
				refresh_token       BLOB NOT NULL,
				id_token_claims     TEXT NOT NULL DEFAULT '{}',
				user_agent          TEXT NOT NULL DEFAULT '',
				remote_ip           TEXT NOT NULL DEFAULT ''
			)`,
			`CREATE INDEX sessions_user_id ON sessions (user_id)`,
			`CREATE INDEX sessions_absolute_expires_at ON sessions (absolute_expires_at)`,
		},
	},
	{
		version: 3,
		name:    "invitations",
		stmts: []string{
			// Invitations (package invitations, through Tx). secret_hash is
			// the hex SHA-256 of the secret in the link: the link itself is
			// never stored. roles is a JSON array. status is pending,
			// accepted, revoked, expired or failed; only the pending→other
			// transition is ever made, guarded by the status in the WHERE.
			`CREATE TABLE invitations (
				id           TEXT NOT NULL PRIMARY KEY,
				secret_hash  TEXT NOT NULL,
				email        TEXT NOT NULL,
				email_lower  TEXT NOT NULL,
				user_id      TEXT REFERENCES users (id) ON DELETE CASCADE,
				roles        TEXT NOT NULL DEFAULT '[]',
				created_by   TEXT NOT NULL,
				created_at   TEXT NOT NULL,
				expires_at   TEXT NOT NULL,
				status       TEXT NOT NULL,
				status_at    TEXT NOT NULL,
				status_note  TEXT NOT NULL DEFAULT '',
				accepted_by  TEXT REFERENCES users (id) ON DELETE SET NULL,
				last_sent_at TEXT
			)`,
			`CREATE UNIQUE INDEX invitations_secret_hash ON invitations (secret_hash)`,
			`CREATE INDEX invitations_status_expires ON invitations (status, expires_at)`,
			`CREATE INDEX invitations_email_lower ON invitations (email_lower)`,
		},
	},
	{
		version: 4,
		name:    "sessions bound to their app client",
		stmts: []string{
			// A session belongs to the pool (issuer) and app client that
			// signed it in; a handler of another pool or client treats it
			// as no session. Sessions from before have no client and so
			// end: their users sign in again once.
			`ALTER TABLE sessions ADD COLUMN client_id TEXT NOT NULL DEFAULT ''`,
		},
	},
	{
		version: 5,
		name:    "username and email keys folded as ASCII only",
		// username_lower / email_lower (users) and email_lower
		// (invitations) were strings.ToLower of the value, which maps
		// some non-ASCII letters (the Kelvin sign) onto ASCII ones; they
		// become FoldKey of the value (fold.go), in Go so the rule is the
		// one every lookup uses.
		apply: refoldKeys,
	},
	{
		version: 6,
		name:    "roles carry their source",
		stmts: []string{
			// A role is held by hand (the CLI, the admin API, an
			// invitation: source 'local') or because the provider says so
			// (the `roles` block maps a Cognito group or claim to it:
			// source 'provider'), and may be held both ways at once, so
			// that a group leaving takes only the provider's grant away.
			// The primary key grows by the source, which SQLite cannot
			// ALTER: the table is rebuilt (portable SQL, PostgreSQL too).
			`CREATE TABLE user_roles_v6 (
				user_id    TEXT NOT NULL REFERENCES users (id),
				role       TEXT NOT NULL,
				source     TEXT NOT NULL DEFAULT 'local',
				created_at TEXT NOT NULL,
				PRIMARY KEY (user_id, role, source)
			)`,
			`INSERT INTO user_roles_v6 (user_id, role, source, created_at)
				SELECT user_id, role, 'local', created_at FROM user_roles`,
			`DROP TABLE user_roles`,
			`ALTER TABLE user_roles_v6 RENAME TO user_roles`,
			`CREATE INDEX user_roles_role ON user_roles (role)`,
		},
	},
	{
		version: 7,
		name:    "sessions keep the token forwarded upstream",
		stmts: []string{
			// With cognito_login's forward_token, the session's current
			// access or ID token, sealed by the caller like the refresh
			// token (BLOB; BYTEA on PostgreSQL). NULL when not forwarding.
			`ALTER TABLE sessions ADD COLUMN forward_token BLOB`,
		},
	},
}

// SchemaVersion is the schema version this build writes and understands.
func SchemaVersion() int { return len(migrations) }

func init() {
	for i, m := range migrations {
		if m.version != i+1 {
			panic(fmt.Sprintf("userstore: migrations[%d] has version %d, want %d", i, m.version, i+1))
		}
	}
}

// migrate brings the schema to SchemaVersion. The unlocked read is only a
// fast path for the common "already current" case; the decision is taken
// again after BEGIN IMMEDIATE, so when two processes start on a fresh file one
// migrates and the other finds the work done.
func (s *Store) migrate(ctx context.Context, hooks *testHooks) error {
	target := SchemaVersion()
	v, err := s.d.readVersion(ctx, s.db)
	if err != nil {
		return s.wrap("read schema version of "+s.path, err)
	}
	if v > target {
		return s.tooNew(v, target)
	}
	if v == target {
		return nil
	}
	if hooks != nil && hooks.beforeLock != nil {
		hooks.beforeLock(v)
	}
	var from int
	err = s.inTx(ctx, "migrate "+s.path, true, s.d.lockSchema, func(tx *sql.Tx) error {
		cur, err := s.d.readVersion(ctx, tx)
		if err != nil {
			return err
		}
		from = cur
		if hooks != nil && hooks.afterLock != nil {
			hooks.afterLock(cur)
		}
		if cur > target {
			return s.tooNew(cur, target)
		}
		now := s.nowUTC()
		for _, m := range migrations[cur:] {
			for _, stmt := range m.stmts {
				if _, err := tx.ExecContext(ctx, s.d.ddl(stmt)); err != nil {
					return fmt.Errorf("migration %d (%s): %w", m.version, m.name, err)
				}
			}
			if m.apply != nil {
				if err := m.apply(ctx, s, tx); err != nil {
					return fmt.Errorf("migration %d (%s): %w", m.version, m.name, err)
				}
			}
			if err := s.insertAudit(ctx, tx, now, "system", "schema.migrate",
				fmt.Sprintf("v%d", m.version), map[string]any{"name": m.name}); err != nil {
				return err
			}
		}
		if cur == target {
			return nil
		}
		return s.d.writeVersion(ctx, tx, target)
	})
	if err != nil {
		return err
	}
	if from < target {
		s.log.Info("migrated identity store", zap.String("path", s.path),
			zap.Int("from", from), zap.Int("to", target))
	}
	return nil
}

func (s *Store) tooNew(v, known int) error {
	return fmt.Errorf("userstore: %w: %s is at schema version %d, this build knows versions up to %d; run a newer caddy-cognito or restore a backup",
		ErrSchemaTooNew, s.path, v, known)
}
