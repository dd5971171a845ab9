package userstore

import (
	"context"
	"database/sql"
	"errors"
	"sort"
	"strings"
	"time"
)

// User is a local user with its roles.
type User struct {
	ID          string     `json:"id"`       // opaque, "u_" + 32 hex characters (16 random bytes)
	Username    string     `json:"username"` // unique among usernames and emails (FoldKey); never shaped like an id
	Email       string     `json:"email"`    // original case; unique among emails and usernames (FoldKey) when non-empty
	GivenName   string     `json:"given_name"`
	FamilyName  string     `json:"family_name"`
	Active      bool       `json:"active"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
	LastLoginAt *time.Time `json:"last_login_at,omitempty"` // nil if never
	Roles       []string   `json:"roles"`                   // sorted: every role the user holds, however granted
	// LocalRoles were granted by hand (CLI, admin API) or by an
	// invitation; ProviderRoles by the provider, through the `roles`
	// mapping of Cognito groups and claims, kept in step at every
	// sign-in. A role may be in both. Both sorted.
	LocalRoles    []string `json:"local_roles"`
	ProviderRoles []string `json:"provider_roles"`
}

// HasRole reports whether u holds role.
func (u *User) HasRole(role string) bool {
	for _, r := range u.Roles {
		if r == role {
			return true
		}
	}
	return false
}

// NewUser describes a user to create. The zero value of Disabled creates an
// active user.
type NewUser struct {
	Username   string
	Email      string
	GivenName  string
	FamilyName string
	Disabled   bool
	Roles      []string
}

// UserUpdate changes profile fields; nil fields stay as they are.
type UserUpdate struct {
	Username   *string
	Email      *string
	GivenName  *string
	FamilyName *string
}

// UserFilter selects users for ListUsers. Zero value: everyone, first 100.
type UserFilter struct {
	// Query matches a case-insensitive substring of username or email.
	Query string
	// Role keeps users holding this role.
	Role string
	// Active, when set, keeps only active (true) or disabled (false) users.
	Active *bool
	// Limit (default 100, max 1000) and Offset page through the result,
	// ordered by username.
	Limit, Offset int
}

const userCols = `u.id, u.username, u.email, u.given_name, u.family_name, u.active, u.created_at, u.updated_at, u.last_login_at`

// nowUTC is the store clock at the precision times are stored with, so a
// returned value equals what a later read returns.
func (s *Store) nowUTC() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// CreateUser creates a user (and its roles) and writes a user.create audit
// row. Usernames and emails share one namespace, compared by FoldKey: a
// username or email that is already another user's username or email is
// ErrConflict; a username shaped like a user id is ErrInvalid.
func (s *Store) CreateUser(ctx context.Context, actor string, nu NewUser) (*User, error) {
	var u *User
	err := s.writeTx(ctx, "create user", func(tx *sql.Tx) error {
		var err error
		u, err = s.createUserTx(ctx, tx, actor, nu)
		return err
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

func (s *Store) createUserTx(ctx context.Context, tx *sql.Tx, actor string, nu NewUser) (*User, error) {
	if err := checkUsername(nu.Username); err != nil {
		return nil, err
	}
	nu.Email = strings.TrimSpace(nu.Email)
	if err := checkEmail(nu.Email); err != nil {
		return nil, err
	}
	if err := checkText("given_name", nu.GivenName, maxNameLen, false); err != nil {
		return nil, err
	}
	if err := checkText("family_name", nu.FamilyName, maxNameLen, false); err != nil {
		return nil, err
	}
	roles, err := cleanRoles(nu.Roles)
	if err != nil {
		return nil, err
	}
	if err := s.checkUnique(ctx, tx, "", nu.Username, nu.Email); err != nil {
		return nil, err
	}
	id, err := newID("u_")
	if err != nil {
		return nil, err
	}
	now := s.nowUTC()
	_, err = tx.ExecContext(ctx, s.q(`INSERT INTO users
		(id, username, username_lower, email, email_lower, given_name, family_name, active, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		id, nu.Username, key(nu.Username), nu.Email, emailKey(nu.Email),
		nu.GivenName, nu.FamilyName, boolInt(!nu.Disabled), fmtTime(now), fmtTime(now))
	if err != nil {
		return nil, err
	}
	for _, r := range roles {
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO user_roles (user_id, role, source, created_at) VALUES (?, ?, 'local', ?)`),
			id, r, fmtTime(now)); err != nil {
			return nil, err
		}
	}
	sort.Strings(roles)
	if err := s.insertAudit(ctx, tx, now, actor, ActionUserCreate, id, map[string]any{
		"username": nu.Username, "email": nu.Email, "active": !nu.Disabled, "roles": roles,
	}); err != nil {
		return nil, err
	}
	return &User{
		ID: id, Username: nu.Username, Email: nu.Email, GivenName: nu.GivenName,
		FamilyName: nu.FamilyName, Active: !nu.Disabled, CreatedAt: now, UpdatedAt: now,
		Roles: roles, LocalRoles: roles, ProviderRoles: []string{},
	}, nil
}

// checkUnique enforces that a username or email stands for one user only.
// Usernames and emails share one namespace (GetUser resolves a reference
// against both), so a new username may equal neither another user's
// username nor another user's email, and a new email neither another
// user's email nor another user's username (all by FoldKey). A user's own
// username may equal its own email. It reports ErrConflict naming the
// clash and runs inside the write transaction, so nothing can slip in
// between check and insert (writes are serialised: BEGIN IMMEDIATE); the
// unique indexes remain the backstop within each column.
func (s *Store) checkUnique(ctx context.Context, tx *sql.Tx, selfID, username, email string) error {
	field, err := s.keyHolder(ctx, tx, selfID, username)
	switch {
	case err != nil:
		return err
	case field == "username":
		return conflictf("username %q is taken", username)
	case field == "email":
		return conflictf("username %q is another user's email", username)
	}
	field, err = s.keyHolder(ctx, tx, selfID, email)
	switch {
	case err != nil:
		return err
	case field == "username":
		return conflictf("email %q is another user's username", email)
	case field == "email":
		return conflictf("email %q belongs to another user", email)
	}
	return nil
}

// keyHolder says whether a user other than selfID already holds v (by
// FoldKey) as its "username" or its "email"; "" when none does.
func (s *Store) keyHolder(ctx context.Context, tx *sql.Tx, selfID, v string) (string, error) {
	k := key(v)
	if k == "" {
		return "", nil
	}
	var otherUsername string
	err := tx.QueryRowContext(ctx, s.q(`SELECT username_lower FROM users
		WHERE (username_lower = ? OR email_lower = ?) AND id <> ?
		ORDER BY CASE WHEN username_lower = ? THEN 0 ELSE 1 END LIMIT 1`), k, k, selfID, k).Scan(&otherUsername)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", nil
	case err != nil:
		return "", err
	case otherUsername == k:
		return "username", nil
	}
	return "email", nil
}

// GetUser resolves a reference, as an operator gives one (the CLI, the
// admin API), to a user with its roles: an exact user id, or a username or
// email compared by FoldKey. Usernames and emails share one namespace, so
// the store never lets a reference name two users; should a database still
// hold such a pair (written before that rule), or should a reference be
// one user's id and another's username, GetUser refuses with ErrConflict
// ("ambiguous reference …", naming the ids) rather than pick one. Code
// that holds a user id uses GetUserByID.
func (s *Store) GetUser(ctx context.Context, idOrUsernameOrEmail string) (*User, error) {
	ref := idOrUsernameOrEmail
	k := key(ref)
	if k == "" {
		return nil, s.wrap("get user", invalidf("empty user key"))
	}
	users, err := s.queryUsers(ctx, s.db, `u.id IN (SELECT id FROM users
		WHERE id = ? OR username_lower = ? OR email_lower = ?)`, ref, k, k)
	if err != nil {
		return nil, s.wrap("get user", err)
	}
	switch len(users) {
	case 0:
		return nil, s.wrap("get user", notFoundf("no user %q", ref))
	case 1:
		return &users[0], nil
	}
	matches := make([]string, len(users))
	for i, u := range users {
		how := "email"
		switch {
		case u.ID == ref:
			how = "id"
		case key(u.Username) == k:
			how = "username"
		}
		matches[i] = u.ID + " (" + how + ")"
	}
	return nil, s.wrap("get user", conflictf("ambiguous reference %q: it names %d users, %s; use the user id",
		ref, len(users), strings.Join(matches, ", ")))
}

// GetUserByID returns the user with exactly this id, with its roles, or
// ErrNotFound. It never matches a username or email: it is the lookup for
// code that holds an id (a session, a link), where a reference that could
// resolve to someone else must not be used.
func (s *Store) GetUserByID(ctx context.Context, id string) (*User, error) {
	defer s.observed(false, time.Now())
	users, err := s.queryUsers(ctx, s.db, `u.id = ?`, id)
	if err != nil {
		return nil, s.wrap("get user by id", err)
	}
	if len(users) == 0 {
		return nil, s.wrap("get user by id", notFoundf("no user with id %q", id))
	}
	return &users[0], nil
}

// ListUsers returns users matching f, ordered by username, with roles.
func (s *Store) ListUsers(ctx context.Context, f UserFilter) ([]User, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	if f.Limit > 1000 {
		f.Limit = 1000
	}
	if f.Offset < 0 {
		f.Offset = 0
	}
	var conds []string
	var args []any
	if q := key(f.Query); q != "" {
		like := "%" + strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(q) + "%"
		conds = append(conds, `(username_lower LIKE ? ESCAPE '\' OR email_lower LIKE ? ESCAPE '\')`)
		args = append(args, like, like)
	}
	if f.Role != "" {
		conds = append(conds, `id IN (SELECT user_id FROM user_roles WHERE role = ?)`)
		args = append(args, f.Role)
	}
	if f.Active != nil {
		conds = append(conds, `active = ?`)
		args = append(args, boolInt(*f.Active))
	}
	sub := `SELECT id FROM users`
	if len(conds) > 0 {
		sub += ` WHERE ` + strings.Join(conds, ` AND `)
	}
	sub += ` ORDER BY username_lower LIMIT ? OFFSET ?`
	args = append(args, f.Limit, f.Offset)
	users, err := s.queryUsers(ctx, s.db, `u.id IN (`+sub+`)`, args...)
	if err != nil {
		return nil, s.wrap("list users", err)
	}
	return users, nil
}

// queryUsers loads users matching where (over alias u) with their roles in
// one statement, so the user row and its roles come from one snapshot.
func (s *Store) queryUsers(ctx context.Context, q querier, where string, args ...any) ([]User, error) {
	rows, err := q.QueryContext(ctx, s.q(`SELECT `+userCols+`, r.role, r.source FROM users u
		LEFT JOIN user_roles r ON r.user_id = u.id
		WHERE `+where+`
		ORDER BY u.username_lower, u.id, r.role, r.source`), args...)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }() // rows.Err, checked below, reports what went wrong
	var out []User
	for rows.Next() {
		var u User
		var active int
		var created, updated string
		var lastLogin, role, source sql.NullString
		if err := rows.Scan(&u.ID, &u.Username, &u.Email, &u.GivenName, &u.FamilyName, &active,
			&created, &updated, &lastLogin, &role, &source); err != nil {
			return nil, err
		}
		if n := len(out); n > 0 && out[n-1].ID == u.ID {
			out[n-1].addRole(role, source)
			continue
		}
		u.Active = active != 0
		if u.CreatedAt, err = parseTime(created); err != nil {
			return nil, err
		}
		if u.UpdatedAt, err = parseTime(updated); err != nil {
			return nil, err
		}
		if lastLogin.Valid {
			t, err := parseTime(lastLogin.String)
			if err != nil {
				return nil, err
			}
			u.LastLoginAt = &t
		}
		u.Roles, u.LocalRoles, u.ProviderRoles = []string{}, []string{}, []string{}
		u.addRole(role, source)
		out = append(out, u)
	}
	return out, rows.Err()
}

// addRole adds one user_roles row, read in (role, source) order, to u.
func (u *User) addRole(role, source sql.NullString) {
	if !role.Valid {
		return
	}
	if n := len(u.Roles); n == 0 || u.Roles[n-1] != role.String {
		u.Roles = append(u.Roles, role.String)
	}
	if source.String == SourceProvider {
		u.ProviderRoles = append(u.ProviderRoles, role.String)
	} else {
		u.LocalRoles = append(u.LocalRoles, role.String)
	}
}

// userTx loads one user by exact id inside a transaction.
func (s *Store) userTx(ctx context.Context, tx *sql.Tx, userID string) (*User, error) {
	users, err := s.queryUsers(ctx, tx, `u.id = ?`, userID)
	if err != nil {
		return nil, err
	}
	if len(users) == 0 {
		return nil, notFoundf("no user with id %q", userID)
	}
	return &users[0], nil
}

// UpdateUser changes profile fields and writes a user.update audit row with
// the fields that changed. Returns the updated user.
func (s *Store) UpdateUser(ctx context.Context, actor, userID string, upd UserUpdate) (*User, error) {
	var out *User
	err := s.writeTx(ctx, "update user", func(tx *sql.Tx) error {
		u, err := s.userTx(ctx, tx, userID)
		if err != nil {
			return err
		}
		changed := map[string]any{}
		if upd.Username != nil && *upd.Username != u.Username {
			if err := checkUsername(*upd.Username); err != nil {
				return err
			}
			if err := s.checkUnique(ctx, tx, u.ID, *upd.Username, ""); err != nil {
				return err
			}
			u.Username, changed["username"] = *upd.Username, *upd.Username
		}
		if upd.Email != nil && strings.TrimSpace(*upd.Email) != u.Email {
			e := strings.TrimSpace(*upd.Email)
			if err := checkEmail(e); err != nil {
				return err
			}
			if err := s.checkUnique(ctx, tx, u.ID, "", e); err != nil {
				return err
			}
			u.Email, changed["email"] = e, e
		}
		if upd.GivenName != nil && *upd.GivenName != u.GivenName {
			if err := checkText("given_name", *upd.GivenName, maxNameLen, false); err != nil {
				return err
			}
			u.GivenName, changed["given_name"] = *upd.GivenName, *upd.GivenName
		}
		if upd.FamilyName != nil && *upd.FamilyName != u.FamilyName {
			if err := checkText("family_name", *upd.FamilyName, maxNameLen, false); err != nil {
				return err
			}
			u.FamilyName, changed["family_name"] = *upd.FamilyName, *upd.FamilyName
		}
		out = u
		if len(changed) == 0 {
			return nil
		}
		now := s.nowUTC()
		u.UpdatedAt = now
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE users SET username = ?, username_lower = ?, email = ?, email_lower = ?,
			given_name = ?, family_name = ?, updated_at = ? WHERE id = ?`),
			u.Username, key(u.Username), u.Email, emailKey(u.Email), u.GivenName, u.FamilyName, fmtTime(now), u.ID); err != nil {
			return err
		}
		return s.insertAudit(ctx, tx, now, actor, ActionUserUpdate, u.ID, changed)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// SetActive enables or disables a user (audit: user.enable / user.disable).
// A disabled user keeps its identities and roles but every lookup reports
// ErrDisabled. Setting the current state again changes and audits nothing.
func (s *Store) SetActive(ctx context.Context, actor, userID string, active bool) error {
	return s.writeTx(ctx, "set active", func(tx *sql.Tx) error {
		u, err := s.userTx(ctx, tx, userID)
		if err != nil {
			return err
		}
		if u.Active == active {
			return nil
		}
		now := s.nowUTC()
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE users SET active = ?, updated_at = ? WHERE id = ?`),
			boolInt(active), fmtTime(now), userID); err != nil {
			return err
		}
		action := ActionUserDisable
		if active {
			action = ActionUserEnable
		}
		return s.insertAudit(ctx, tx, now, actor, action, userID, map[string]any{"username": u.Username})
	})
}

// TouchLogin records a successful login (last_login_at, audit user.login
// with the user as actor). Call it when a session is created, not on every
// request.
func (s *Store) TouchLogin(ctx context.Context, userID string) error {
	return s.writeTx(ctx, "touch login", func(tx *sql.Tx) error {
		now := s.nowUTC()
		res, err := tx.ExecContext(ctx, s.q(`UPDATE users SET last_login_at = ? WHERE id = ?`), fmtTime(now), userID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return notFoundf("no user with id %q", userID)
		}
		return s.insertAudit(ctx, tx, now, userID, ActionUserLogin, userID, nil)
	})
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// emailKey is NULL for "no email" so any number of users may have none.
func emailKey(email string) any {
	if k := key(email); k != "" {
		return k
	}
	return nil
}
