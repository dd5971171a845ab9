package userstore

import (
	"context"
	"database/sql"
	"errors"
)

// Admission says how a first-time identity (issuer, sub) becomes a local
// user. The caller (the login handler's admission rules) decides which
// local user it may be; AdmitIdentity carries that out in one transaction.
type Admission struct {
	Issuer, Sub string
	Provider    string // federated provider name, "" for native users

	// MatchUsername links to the existing user with this username
	// (case-insensitive); MatchEmail to the one with this email. At most
	// one is consulted: MatchUsername when set, else MatchEmail.
	MatchUsername string
	MatchEmail    string
	// OnlyUnlinked: the matched user must have no linked identity yet
	// (an account moved from an older sign-in, claimed once). A match
	// that already has one is ErrConflict, audited as
	// identity.link_refused on that user.
	OnlyUnlinked bool

	// Create, when set, is the user to create when no user matched (or
	// when there is nothing to match). A clash of its username or email
	// with another user is ErrConflict: a new identity never takes over
	// an account it was not matched to.
	Create *NewUser
}

// AdmitIdentity links a.Issuer/a.Sub to a local user as a describes and
// returns that user with its roles. The identity check, the match, the
// creation and the link share one immediate transaction, so two
// concurrent first sign-ins of the same identity end with one link.
//
// Results: the user; ErrNotFound when nothing matched and there is nothing
// to create; ErrDisabled when the matched user is disabled (nothing is
// linked); ErrConflict when the created user would clash. An identity that
// is already linked returns its user, whatever a says (the caller checks
// Active).
func (s *Store) AdmitIdentity(ctx context.Context, actor string, a Admission) (*User, error) {
	if err := checkIssuerSub(a.Issuer, a.Sub); err != nil {
		return nil, s.wrap("admit identity", err)
	}
	if err := checkText("provider", a.Provider, maxNameLen, false); err != nil {
		return nil, s.wrap("admit identity", err)
	}
	var out *User
	var refusedFor string // the linked user an OnlyUnlinked match hit
	err := s.writeTx(ctx, "admit identity", func(tx *sql.Tx) error {
		var owner string
		err := tx.QueryRowContext(ctx, s.q(`SELECT user_id FROM identities WHERE issuer = ? AND sub = ?`), a.Issuer, a.Sub).Scan(&owner)
		switch {
		case err == nil: // linked meanwhile (a concurrent sign-in)
			out, err = s.userTx(ctx, tx, owner)
			return err
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		u, err := s.matchUser(ctx, tx, a)
		if err != nil {
			return err
		}
		if u != nil && !u.Active {
			return disabledf("user %s (%s) is disabled", u.Username, u.ID)
		}
		if u != nil && a.OnlyUnlinked {
			var one int
			err := tx.QueryRowContext(ctx, s.q(`SELECT 1 FROM identities WHERE user_id = ? LIMIT 1`), u.ID).Scan(&one)
			switch {
			case err == nil:
				refusedFor = u.ID
				return conflictf("user %s is already linked to another identity", u.Username)
			case !errors.Is(err, sql.ErrNoRows):
				return err
			}
		}
		if u == nil {
			if a.Create == nil {
				return notFoundf("no local user matches this identity")
			}
			if u, err = s.createUserTx(ctx, tx, actor, *a.Create); err != nil {
				return err
			}
		}
		out = u
		return s.linkIdentityTx(ctx, tx, actor, u.ID, a.Issuer, a.Sub, a.Provider)
	})
	if refusedFor != "" {
		// The refusal is worth an audit row on the user someone tried to
		// take over; the admission itself was rolled back.
		if aerr := s.writeTx(ctx, "audit refused link", func(tx *sql.Tx) error {
			return s.insertAudit(ctx, tx, s.nowUTC(), actor, ActionIdentityLinkRefused, refusedFor,
				map[string]any{"issuer": a.Issuer, "sub": a.Sub, "reason": "already linked to another identity"})
		}); aerr != nil {
			return nil, errors.Join(err, aerr)
		}
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// matchUser finds the existing user a names, or nil.
func (s *Store) matchUser(ctx context.Context, tx *sql.Tx, a Admission) (*User, error) {
	var where, arg string
	switch {
	case key(a.MatchUsername) != "":
		where, arg = `u.username_lower = ?`, key(a.MatchUsername)
	case key(a.MatchEmail) != "":
		where, arg = `u.email_lower = ?`, key(a.MatchEmail)
	default:
		return nil, nil
	}
	users, err := s.queryUsers(ctx, tx, where, arg)
	if err != nil || len(users) == 0 {
		return nil, err
	}
	return &users[0], nil
}
