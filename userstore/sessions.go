package userstore

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Session is a server-side browser session. The browser's cookie carries
// only a random session id; the store keys the session by IDHash, the hex
// SHA-256 of that id, computed by the caller, so a copy of the database
// holds no usable cookie. Tokens never reach the browser: the refresh token
// is kept here as ciphertext made by the caller (the store sees opaque
// bytes); the access or ID token only when the handler forwards it
// upstream (ForwardToken, ciphertext too), else not at all.
//
// A session is live while the store clock is before both IdleExpiresAt and
// AbsoluteExpiresAt and its user is active. GetSession, TouchSession and
// UpdateSessionTokens treat anything else as ErrNotFound, so disabling a user
// (SetActive) ends its sessions at once; re-enabling it brings back those
// that have not expired meanwhile (DeleteUserSessions ends them for good).
type Session struct {
	IDHash string // 64 lower-case hex characters
	UserID string
	Issuer string // the ID token's iss
	Sub    string // the ID token's sub
	// ClientID is the app client the session was signed in with. With
	// Issuer it binds the session to one pool and client: a sign-in
	// handler of another one must treat the session as absent.
	ClientID string

	CreatedAt         time.Time
	LastSeenAt        time.Time
	IdleExpiresAt     time.Time // moved forward by TouchSession, never past AbsoluteExpiresAt
	AbsoluteExpiresAt time.Time
	AccessExpiresAt   time.Time // when the access token needs a refresh

	RefreshToken  []byte          // opaque ciphertext; empty when there is none; nil in ListUserSessions
	IDTokenClaims json.RawMessage // the last verified ID token claims (a JSON object), for /me
	// ForwardToken is the token a forward_token handler sends upstream,
	// as opaque ciphertext; nil when none is kept (and in ListUserSessions).
	ForwardToken []byte

	UserAgent string // sanitised: control characters removed, at most maxUserAgentLen bytes
	RemoteIP  string // sanitised: control characters removed, at most maxRemoteIPLen bytes
}

// ActionSessionRevokeAll is the audit action of DeleteUserSessions.
// Session creation is audited by the caller through TouchLogin (user.login);
// touches, token refreshes, logouts and purges are per-request or
// housekeeping traffic and write no audit rows.
const ActionSessionRevokeAll = "session.revoke_all"

// Session field limits.
const (
	sessionIDHashLen = 64 // hex SHA-256
	maxUserAgentLen  = 512
	maxRemoteIPLen   = 128
	maxClaimsLen     = 64 << 10
)

const sessionCols = `s.id_hash, s.user_id, s.issuer, s.sub, s.client_id, s.created_at, s.last_seen_at,
	s.idle_expires_at, s.absolute_expires_at, s.access_expires_at, s.id_token_claims, s.user_agent, s.remote_ip`

// liveSession is the condition under which a session may be used: neither
// deadline has passed and its user is active. p is the table alias with its
// dot ("s.") or ""; the condition takes two arguments: now, now.
func liveSession(p string) string {
	return p + `idle_expires_at > ? AND ` + p + `absolute_expires_at > ? AND ` +
		p + `user_id IN (SELECT id FROM users WHERE active = 1)`
}

func checkIDHash(h string) error {
	if len(h) != sessionIDHashLen {
		return invalidf("session id hash must be %d hex characters, got %d", sessionIDHashLen, len(h))
	}
	if !isLowerHex(h) {
		return invalidf("session id hash must be lower-case hex")
	}
	return nil
}

// sessionTime brings a caller's time to the stored precision; zero is
// rejected as a missing field.
func sessionTime(field string, t time.Time) (time.Time, error) {
	if t.IsZero() {
		return time.Time{}, invalidf("session %s is required", field)
	}
	return t.UTC().Truncate(time.Microsecond), nil
}

// sanitizeText makes client-supplied text (User-Agent, remote address)
// safe to store, log and show: invalid UTF-8 and control characters are
// dropped, surrounding space trimmed, and the result cut to max bytes on a
// character boundary. It never fails: these fields are informational.
func sanitizeText(v string, max int) string {
	v = strings.ToValidUTF8(v, "")
	v = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, v)
	v = strings.TrimSpace(v)
	if len(v) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(v[cut]) {
			cut--
		}
		v = v[:cut]
	}
	return v
}

// checkClaims returns the claims to store: "{}" for none, else a JSON object.
func checkClaims(c json.RawMessage) (string, error) {
	if len(c) == 0 {
		return "{}", nil
	}
	if len(c) > maxClaimsLen {
		return "", invalidf("id token claims are longer than %d bytes", maxClaimsLen)
	}
	if !json.Valid(c) {
		return "", invalidf("id token claims are not valid JSON")
	}
	if t := bytes.TrimSpace(c); len(t) == 0 || t[0] != '{' {
		return "", invalidf("id token claims are not a JSON object")
	}
	return string(c), nil
}

// blob never hands the driver a nil slice for a NOT NULL blob column: some
// drivers bind nil []byte as NULL.
func blob(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// CreateSession stores a new session. Times are kept in UTC at microsecond
// precision. Required: IDHash (64 lower-case hex characters), UserID, Issuer, ClientID,
// Sub, CreatedAt, IdleExpiresAt, AbsoluteExpiresAt, AccessExpiresAt; a zero
// LastSeenAt means CreatedAt. AbsoluteExpiresAt and IdleExpiresAt must not
// be before CreatedAt, and IdleExpiresAt is capped at AbsoluteExpiresAt.
// RefreshToken may be empty; IDTokenClaims, when given, must be a JSON
// object. UserAgent and RemoteIP are sanitised, never rejected.
//
// Errors: ErrInvalid for the above, ErrConflict when the id hash exists,
// ErrNotFound when the user does not exist, ErrDisabled when it is disabled
// (a session it could never use is a caller bug, not something to store).
// No audit row: the caller records the login with TouchLogin.
func (s *Store) CreateSession(ctx context.Context, sess Session) error {
	const op = "create session"
	if err := checkIDHash(sess.IDHash); err != nil {
		return s.wrap(op, err)
	}
	if strings.TrimSpace(sess.UserID) == "" {
		return s.wrap(op, invalidf("session user id is required"))
	}
	if err := checkIssuerSub(sess.Issuer, sess.Sub); err != nil {
		return s.wrap(op, err)
	}
	if err := checkText("session client id", sess.ClientID, maxKeyLen, true); err != nil {
		return s.wrap(op, err)
	}
	var err error
	for _, f := range []struct {
		name string
		t    *time.Time
	}{
		{"created_at", &sess.CreatedAt},
		{"idle_expires_at", &sess.IdleExpiresAt},
		{"absolute_expires_at", &sess.AbsoluteExpiresAt},
		{"access_expires_at", &sess.AccessExpiresAt},
	} {
		if *f.t, err = sessionTime(f.name, *f.t); err != nil {
			return s.wrap(op, err)
		}
	}
	if sess.LastSeenAt.IsZero() {
		sess.LastSeenAt = sess.CreatedAt
	}
	sess.LastSeenAt = sess.LastSeenAt.UTC().Truncate(time.Microsecond)
	if sess.AbsoluteExpiresAt.Before(sess.CreatedAt) {
		return s.wrap(op, invalidf("session absolute expiry %s is before its creation %s",
			fmtTime(sess.AbsoluteExpiresAt), fmtTime(sess.CreatedAt)))
	}
	if sess.IdleExpiresAt.Before(sess.CreatedAt) {
		return s.wrap(op, invalidf("session idle expiry %s is before its creation %s",
			fmtTime(sess.IdleExpiresAt), fmtTime(sess.CreatedAt)))
	}
	if sess.IdleExpiresAt.After(sess.AbsoluteExpiresAt) {
		sess.IdleExpiresAt = sess.AbsoluteExpiresAt
	}
	claims, err := checkClaims(sess.IDTokenClaims)
	if err != nil {
		return s.wrap(op, err)
	}
	ua := sanitizeText(sess.UserAgent, maxUserAgentLen)
	ip := sanitizeText(sess.RemoteIP, maxRemoteIPLen)

	return s.writeTx(ctx, op, func(tx *sql.Tx) error {
		var active int
		err := tx.QueryRowContext(ctx, s.q(`SELECT active FROM users WHERE id = ?`), sess.UserID).Scan(&active)
		if errors.Is(err, sql.ErrNoRows) {
			return notFoundf("no user with id %q", sess.UserID)
		}
		if err != nil {
			return err
		}
		if active == 0 {
			return disabledf("user %q is disabled", sess.UserID)
		}
		var one int
		err = tx.QueryRowContext(ctx, s.q(`SELECT 1 FROM sessions WHERE id_hash = ?`), sess.IDHash).Scan(&one)
		if err == nil {
			return conflictf("a session with this id hash exists")
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		_, err = tx.ExecContext(ctx, s.q(`INSERT INTO sessions
			(id_hash, user_id, issuer, sub, client_id, created_at, last_seen_at, idle_expires_at, absolute_expires_at,
			 access_expires_at, refresh_token, id_token_claims, user_agent, remote_ip, forward_token)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			sess.IDHash, sess.UserID, sess.Issuer, sess.Sub, sess.ClientID, fmtTime(sess.CreatedAt), fmtTime(sess.LastSeenAt),
			fmtTime(sess.IdleExpiresAt), fmtTime(sess.AbsoluteExpiresAt), fmtTime(sess.AccessExpiresAt),
			blob(sess.RefreshToken), claims, ua, ip, nullBlob(sess.ForwardToken))
		return err
	})
}

func disabledf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrDisabled}, args...)...)
}

// GetSession returns the live session with this id hash, refresh token
// included. A session that does not exist, has passed its idle or absolute
// expiry by the store clock, or belongs to a disabled user is ErrNotFound;
// a storage failure is ErrUnavailable, never ErrNotFound.
func (s *Store) GetSession(ctx context.Context, idHash string) (*Session, error) {
	defer s.observed(false, time.Now())
	const op = "get session"
	if err := checkIDHash(idHash); err != nil {
		return nil, s.wrap(op, err)
	}
	now := fmtTime(s.nowUTC())
	row := s.db.QueryRowContext(ctx, s.q(`SELECT `+sessionCols+`, s.refresh_token, s.forward_token FROM sessions s
		WHERE s.id_hash = ? AND `+liveSession("s.")), idHash, now, now)
	var rt, ft []byte
	sess, err := scanSession(row, &rt, &ft)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, s.wrap(op, notFoundf("no live session with this id hash"))
	}
	if err != nil {
		return nil, s.wrap(op, err)
	}
	sess.RefreshToken = blob(rt)
	if len(ft) > 0 {
		sess.ForwardToken = ft
	}
	return sess, nil
}

type scanner interface{ Scan(dest ...any) error }

// scanSession reads sessionCols (and the extra destinations) from r.
func scanSession(r scanner, extra ...any) (*Session, error) {
	var sess Session
	var created, seen, idle, abs, access, claims string
	dest := append([]any{&sess.IDHash, &sess.UserID, &sess.Issuer, &sess.Sub, &sess.ClientID, &created, &seen,
		&idle, &abs, &access, &claims, &sess.UserAgent, &sess.RemoteIP}, extra...)
	if err := r.Scan(dest...); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		s string
		t *time.Time
	}{{created, &sess.CreatedAt}, {seen, &sess.LastSeenAt}, {idle, &sess.IdleExpiresAt},
		{abs, &sess.AbsoluteExpiresAt}, {access, &sess.AccessExpiresAt}} {
		t, err := parseTime(f.s)
		if err != nil {
			return nil, err
		}
		*f.t = t
	}
	sess.IDTokenClaims = json.RawMessage(claims)
	return &sess, nil
}

// TouchSession records activity on a live session: last_seen_at becomes
// lastSeen and idle_expires_at becomes idleExpires, capped at the session's
// absolute expiry (a touch never extends a session past it). Neither ever
// moves backwards, so concurrent touches arriving out of order are harmless.
// A session that is missing, expired or whose user is disabled is
// ErrNotFound: a touch never revives a session. No audit row. On
// PostgreSQL a touch is not a change: the stamp of Changes stays the same
// on every instance (see quietWrite).
func (s *Store) TouchSession(ctx context.Context, idHash string, lastSeen, idleExpires time.Time) error {
	const op = "touch session"
	if err := checkIDHash(idHash); err != nil {
		return s.wrap(op, err)
	}
	var err error
	if lastSeen, err = sessionTime("last_seen_at", lastSeen); err != nil {
		return s.wrap(op, err)
	}
	if idleExpires, err = sessionTime("idle_expires_at", idleExpires); err != nil {
		return s.wrap(op, err)
	}
	if idleExpires.Before(lastSeen) {
		return s.wrap(op, invalidf("idle expiry %s is before last seen %s", fmtTime(idleExpires), fmtTime(lastSeen)))
	}
	seen, idle := fmtTime(lastSeen), fmtTime(idleExpires)
	return s.quietWrite(ctx, op, func(tx *sql.Tx) error {
		now := fmtTime(s.nowUTC())
		// Fixed-width UTC text compares in time order, so CASE does max/min.
		res, err := tx.ExecContext(ctx, s.q(`UPDATE sessions SET
			last_seen_at = CASE WHEN ? > last_seen_at THEN ? ELSE last_seen_at END,
			idle_expires_at = CASE
				WHEN ? >= absolute_expires_at THEN absolute_expires_at
				WHEN ? > idle_expires_at THEN ?
				ELSE idle_expires_at END
			WHERE id_hash = ? AND `+liveSession("")),
			seen, seen, idle, idle, idle, idHash, now, now)
		if err != nil {
			return err
		}
		return oneRow(res)
	})
}

// oneRow turns "no row matched" into ErrNotFound.
func oneRow(res sql.Result) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return notFoundf("no live session with this id hash")
	}
	return nil
}

// UpdateSessionTokens records a token refresh on a live session: the access
// token's expiry, and the refresh token and ID token claims when given. A nil
// refreshToken keeps the stored one (Cognito does not rotate refresh tokens
// by default); a non-nil empty one clears it. Nil idTokenClaims keep the
// stored claims. Missing, expired or disabled: ErrNotFound. No audit row.
func (s *Store) UpdateSessionTokens(ctx context.Context, idHash string, refreshToken []byte, accessExpires time.Time, idTokenClaims json.RawMessage) error {
	const op = "update session tokens"
	if err := checkIDHash(idHash); err != nil {
		return s.wrap(op, err)
	}
	accessExpires, err := sessionTime("access_expires_at", accessExpires)
	if err != nil {
		return s.wrap(op, err)
	}
	var claims any // nil: keep (COALESCE)
	if idTokenClaims != nil {
		c, err := checkClaims(idTokenClaims)
		if err != nil {
			return s.wrap(op, err)
		}
		claims = c
	}
	var rt any // nil: keep (COALESCE)
	if refreshToken != nil {
		rt = refreshToken
	}
	return s.writeTx(ctx, op, func(tx *sql.Tx) error {
		now := fmtTime(s.nowUTC())
		res, err := tx.ExecContext(ctx, s.q(`UPDATE sessions SET
			access_expires_at = ?,
			refresh_token = COALESCE(?, refresh_token),
			id_token_claims = COALESCE(?, id_token_claims)
			WHERE id_hash = ? AND `+liveSession("")),
			fmtTime(accessExpires), rt, claims, idHash, now, now)
		if err != nil {
			return err
		}
		return oneRow(res)
	})
}

// SetSessionForwardToken replaces the ciphertext of the token a live
// session forwards upstream (nil: none). Missing, expired or disabled:
// ErrNotFound. No audit row.
func (s *Store) SetSessionForwardToken(ctx context.Context, idHash string, forwardToken []byte) error {
	const op = "set session forward token"
	if err := checkIDHash(idHash); err != nil {
		return s.wrap(op, err)
	}
	return s.writeTx(ctx, op, func(tx *sql.Tx) error {
		now := fmtTime(s.nowUTC())
		res, err := tx.ExecContext(ctx, s.q(`UPDATE sessions SET forward_token = ? WHERE id_hash = ? AND `+liveSession("")),
			nullBlob(forwardToken), idHash, now, now)
		if err != nil {
			return err
		}
		return oneRow(res)
	})
}

// nullBlob stores nil as NULL (nothing kept), anything else as bytes.
func nullBlob(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

// ClaimSessionRefresh is the compare-and-swap that lets one process of
// several (Caddy instances on one PostgreSQL, or the CLI beside Caddy)
// refresh a session's tokens: it moves the session's access expiry from
// seen, the value the caller read, to until, and reports whether it did.
// Whoever moved it refreshes and then records the new tokens
// (UpdateSessionTokens); every other caller finds the expiry moved, so the
// refresh no longer due, and goes on with the session as stored. A claim
// whose holder died lapses at until. No audit row.
func (s *Store) ClaimSessionRefresh(ctx context.Context, idHash string, seen, until time.Time) (bool, error) {
	const op = "claim session refresh"
	if err := checkIDHash(idHash); err != nil {
		return false, s.wrap(op, err)
	}
	seen, err := sessionTime("access_expires_at", seen)
	if err != nil {
		return false, s.wrap(op, err)
	}
	if until, err = sessionTime("access_expires_at", until); err != nil {
		return false, s.wrap(op, err)
	}
	var claimed bool
	err = s.writeTx(ctx, op, func(tx *sql.Tx) error {
		now := fmtTime(s.nowUTC())
		res, err := tx.ExecContext(ctx, s.q(`UPDATE sessions SET access_expires_at = ?
			WHERE id_hash = ? AND access_expires_at = ? AND `+liveSession("")),
			fmtTime(until), idHash, fmtTime(seen), now, now)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		claimed = n == 1
		return err
	})
	return claimed, err
}

// DeleteSession removes a session (logout). Deleting a session that does
// not exist is not an error. No audit row.
func (s *Store) DeleteSession(ctx context.Context, idHash string) error {
	const op = "delete session"
	if err := checkIDHash(idHash); err != nil {
		return s.wrap(op, err)
	}
	return s.writeTx(ctx, op, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.q(`DELETE FROM sessions WHERE id_hash = ?`), idHash)
		return err
	})
}

// DeleteUserSessions removes every session of a user, expired or not
// ("sign out everywhere"), and returns how many there were. It always writes
// a session.revoke_all audit row (detail: count), also when there were none:
// the operator's action happened. An unknown user is ErrNotFound.
func (s *Store) DeleteUserSessions(ctx context.Context, actor, userID string) (int, error) {
	const op = "delete user sessions"
	var n int64
	err := s.writeTx(ctx, op, func(tx *sql.Tx) error {
		if err := s.userExists(ctx, tx, userID); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, s.q(`DELETE FROM sessions WHERE user_id = ?`), userID)
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil {
			return err
		}
		return s.insertAudit(ctx, tx, s.nowUTC(), actor, ActionSessionRevokeAll, userID, map[string]any{"count": n})
	})
	if err != nil {
		return 0, err
	}
	return int(n), nil
}

// ListUserSessions returns a user's unexpired sessions (by the store clock),
// newest first, for an account or admin page. RefreshToken is always nil:
// ciphertext is never handed to listings. Sessions of a disabled user are
// listed (they come back if it is re-enabled; DeleteUserSessions ends them).
// An unknown user has no sessions: an empty list, not an error.
func (s *Store) ListUserSessions(ctx context.Context, userID string) ([]Session, error) {
	const op = "list user sessions"
	now := fmtTime(s.nowUTC())
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+sessionCols+` FROM sessions s
		WHERE s.user_id = ? AND s.idle_expires_at > ? AND s.absolute_expires_at > ?
		ORDER BY s.created_at DESC, s.id_hash`), userID, now, now)
	if err != nil {
		return nil, s.wrap(op, err)
	}
	defer func() { _ = rows.Close() }() // rows.Err, checked below, reports what went wrong
	out := []Session{}
	for rows.Next() {
		sess, err := scanSession(rows)
		if err != nil {
			return nil, s.wrap(op, err)
		}
		out = append(out, *sess)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap(op, err)
	}
	return out, nil
}

// PurgeExpiredSessions deletes the sessions whose idle or absolute expiry
// is at or before now and returns how many. Sessions of disabled users are
// kept until they expire (re-enabling brings back the unexpired ones).
// Housekeeping: no audit row. A zero now is ErrInvalid.
func (s *Store) PurgeExpiredSessions(ctx context.Context, now time.Time) (int, error) {
	const op = "purge expired sessions"
	if now.IsZero() {
		return 0, s.wrap(op, invalidf("now is required"))
	}
	t := fmtTime(now.UTC().Truncate(time.Microsecond))
	var n int64
	err := s.writeTx(ctx, op, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`DELETE FROM sessions WHERE idle_expires_at <= ? OR absolute_expires_at <= ?`), t, t)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, err
	}
	return int(n), nil
}
