package userstore

import (
	"context"
	"database/sql"
	"strings"

	"go.uber.org/zap"
)

// FoldKey is the one rule by which usernames and emails are compared, for
// lookups and for uniqueness: ASCII white space around the value is
// ignored, the ASCII letters A-Z match a-z, and every other character must
// match exactly. Unicode case mapping is deliberately not used: it makes
// foreign characters equal to ASCII ones (strings.ToLower maps the Kelvin
// sign U+212A to "k", strings.EqualFold matches "ſ" with "s"), so an
// address an attacker controls could match someone else's. Usernames and
// emails share one namespace under this key (see CreateUser, GetUser).
//
// The *_lower columns hold FoldKey of their value; everything that compares
// or keys a username or email (this package, invitations, the admission
// rules) goes through it.
func FoldKey(s string) string {
	s = strings.Trim(s, asciiSpace)
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; 'A' <= c && c <= 'Z' {
					b[j] = c + ('a' - 'A')
				}
			}
			return string(b)
		}
	}
	return s
}

// asciiSpace is the white space FoldKey ignores around a value.
const asciiSpace = " \t\n\v\f\r"

// key is FoldKey, the form stored in username_lower and email_lower.
func key(s string) string { return FoldKey(s) }

// looksLikeUserID reports whether a username would read as a user id
// ("u_" + 32 lower-case hex digits) once folded: ids resolve first in
// GetUser, so such a name would stand for another user.
func looksLikeUserID(s string) bool {
	k := FoldKey(s)
	return len(k) == 34 && strings.HasPrefix(k, "u_") && isLowerHex(k[2:])
}

// isLowerHex reports whether s is made of lower-case hex digits only.
func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// refoldKeys is migration 5: databases written before FoldKey hold
// username_lower and email_lower computed with strings.ToLower (which
// maps some non-ASCII letters onto ASCII ones). It recomputes every key
// with FoldKey, in Go so the rule is exactly the one lookups use (a
// database's lower() differs between databases and builds). The new rule
// only tells apart what the old one merged, so no unique index can clash.
// Pairs the new namespace rule forbids but an older build let in (a
// username equal to another user's email, a username shaped like a user
// id) are not changed: GetUser reports references to them as ambiguous,
// and the migration logs them so an operator can rename one.
func refoldKeys(ctx context.Context, s *Store, tx *sql.Tx) error {
	users, err := scanRows(ctx, tx, `SELECT id, username, email FROM users`)
	if err != nil {
		return err
	}
	for _, u := range users {
		id, username, email := u[0], u[1], u[2]
		if looksLikeUserID(username) {
			s.log.Warn("a username has the form of a user id; rename it (references to it may be ambiguous)",
				zap.String("user", id), zap.String("username", username))
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE users SET username_lower = ?, email_lower = ? WHERE id = ?`),
			key(username), emailKey(email), id); err != nil {
			return err
		}
	}
	invs, err := scanRows(ctx, tx, `SELECT id, email FROM invitations`)
	if err != nil {
		return err
	}
	for _, inv := range invs {
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE invitations SET email_lower = ? WHERE id = ?`), key(inv[1]), inv[0]); err != nil {
			return err
		}
	}
	// Usernames equal to another user's email: the shadowing an older build
	// allowed. Logged, not changed: which one to rename is the operator's call.
	clashes, err := scanRows(ctx, tx, `SELECT a.id, a.username, b.id FROM users a
		JOIN users b ON b.email_lower = a.username_lower AND b.id <> a.id`)
	if err != nil {
		return err
	}
	for _, c := range clashes {
		s.log.Warn("a username equals another user's email; references to it are ambiguous until one is changed",
			zap.String("user", c[0]), zap.String("username", c[1]), zap.String("email_of", c[2]))
	}
	return nil
}

// scanRows reads every row of a query of text columns (all of them read
// before anything else runs on the transaction).
func scanRows(ctx context.Context, tx *sql.Tx, query string) ([][]string, error) {
	rows, err := tx.QueryContext(ctx, query)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }() // rows.Err, checked below, reports what went wrong
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out [][]string
	for rows.Next() {
		row := make([]string, len(cols))
		dest := make([]any, len(cols))
		for i := range row {
			dest[i] = &row[i]
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		out = append(out, row)
	}
	return out, rows.Err()
}
