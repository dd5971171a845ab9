package invitations

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"strconv"
	"strings"
	"time"

	"github.com/caddy-cognito/caddy-cognito/userstore"
)

// Get returns one invitation by id.
func (s *Service) Get(ctx context.Context, id string) (*Invitation, error) {
	list, err := s.query(ctx, `id = ?`, id)
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, userstore.NotFoundf("no invitation %q", id)
	}
	return &list[0], nil
}

// Filter selects invitations for List. Zero value: all, newest first.
type Filter struct {
	Status Status // "" for all; pending also excludes those past expiry
	Email  string // exact, by userstore.FoldKey
	Limit  int    // default 100, at most 1000
}

// List returns invitations matching f, newest first.
func (s *Service) List(ctx context.Context, f Filter) ([]Invitation, error) {
	var where []string
	var args []any
	if f.Status != "" {
		where, args = append(where, `status = ?`), append(args, string(f.Status))
		if f.Status == Pending {
			where, args = append(where, `expires_at > ?`), append(args, userstore.FormatTime(s.now()))
		}
	}
	if f.Email != "" {
		where, args = append(where, `email_lower = ?`), append(args, userstore.FoldKey(f.Email))
	}
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 100
	}
	cond := "1 = 1"
	if len(where) > 0 {
		cond = strings.Join(where, " AND ")
	}
	return s.query(ctx, cond+` ORDER BY created_at DESC, id LIMIT `+strconv.Itoa(f.Limit), args...)
}

func (s *Service) query(ctx context.Context, where string, args ...any) ([]Invitation, error) {
	rows, err := s.store.Read(ctx, `SELECT `+invitationCols+` FROM invitations WHERE `+where, args...)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }() // rows.Err, checked below, reports what went wrong
	var out []Invitation
	for rows.Next() {
		inv, err := scanInvitation(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *inv)
	}
	return out, rows.Err()
}

// Lookup finds the invitation of a link secret, whatever its status (the
// caller decides what to show). Unknown: ErrUnknown. The store is asked
// for the secret's hash, and the hash it returns is compared in constant
// time, so neither step tells an attacker anything about other secrets.
func (s *Service) Lookup(ctx context.Context, secret string) (*Invitation, error) {
	hash := HashSecret(secret)
	if hash == "" {
		return nil, ErrUnknown
	}
	rows, err := s.store.Read(ctx, `SELECT secret_hash, `+invitationCols+` FROM invitations WHERE secret_hash = ?`, hash)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }() // rows.Err, checked below, reports what went wrong
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return nil, err
		}
		return nil, ErrUnknown
	}
	var stored string
	inv, err := scanInvitation(prefixScanner{rows, &stored})
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare([]byte(stored), []byte(hash)) != 1 {
		return nil, ErrUnknown
	}
	return inv, nil
}

// prefixScanner scans one leading column into dst, the rest as r would.
type prefixScanner struct {
	r   *sql.Rows
	dst *string
}

func (p prefixScanner) Scan(dest ...any) error { return p.r.Scan(append([]any{p.dst}, dest...)...) }

// ExpireDue marks pending invitations past their expiry as expired and
// returns how many (the background sweep).
func (s *Service) ExpireDue(ctx context.Context) (int, error) {
	var n int64
	err := s.store.Write(ctx, "expire invitations", func(tx *userstore.Tx) error {
		now := userstore.FormatTime(tx.Now())
		res, err := tx.Exec(`UPDATE invitations SET status = ?, status_at = ? WHERE status = ? AND expires_at <= ?`,
			string(Expired), now, string(Pending), now)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}

// Clean deletes invitations that can no longer be used: expired ones
// (whether or not the sweep has marked them yet), and revoked, accepted
// and failed ones whose status is older than keep. It returns how many.
func (s *Service) Clean(ctx context.Context, keep time.Duration) (int, error) {
	var n int64
	err := s.store.Write(ctx, "clean invitations", func(tx *userstore.Tx) error {
		now := tx.Now()
		res, err := tx.Exec(`DELETE FROM invitations WHERE (status = ? AND expires_at <= ?) OR status = ?
			OR (status IN (?, ?, ?) AND status_at <= ?)`,
			string(Pending), userstore.FormatTime(now), string(Expired),
			string(Revoked), string(Accepted), string(Failed), userstore.FormatTime(now.Add(-keep)))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}
