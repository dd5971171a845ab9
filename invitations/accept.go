package invitations

import (
	"context"
	"database/sql"
	"errors"

	"github.com/caddy-cognito/caddy-cognito/userstore"
)

// Identity is the signed-in Cognito identity accepting an invitation, as
// its verified ID token describes it.
type Identity struct {
	Issuer, Sub   string
	Provider      string // federated provider name, "" for native users
	Username      string // cognito:username: the name of a user created for it
	Email         string
	EmailVerified bool
	GivenName     string
	FamilyName    string
}

// AcceptOptions are the site's acceptance rules.
type AcceptOptions struct {
	// BindEmail: the identity's verified email must equal the
	// invitation's (by userstore.FoldKey: ASCII letters case-insensitive,
	// everything else exact).
	BindEmail bool
}

// Accept binds id to the invitation's local user and grants its roles.
//
// Rules: only a pending, unexpired invitation is accepted; with BindEmail
// the identity's verified email must be the invitation's; an invitation
// for an existing user links only that user (an identity already linked
// to it just gets the roles); an identity linked to any other user is
// refused; an invitation for nobody in particular creates a user for the
// identity. Checking the invitation, linking, creating, granting and
// marking it accepted are one immediate transaction, and the mark is
// guarded by the pending status, so of several racing acceptances exactly
// one wins and the others get ErrUsed.
//
// Errors: ErrUnknown, ErrExpired, ErrUsed, ErrRevoked, ErrFailed,
// ErrEmailMismatch, ErrLinkedElsewhere; userstore.ErrConflict when the user
// to create clashes with an existing username or email; store errors.
func (s *Service) Accept(ctx context.Context, secret string, id Identity, opts AcceptOptions) (*userstore.User, *Invitation, error) {
	hash := HashSecret(secret)
	if hash == "" {
		return nil, nil, ErrUnknown
	}
	var user *userstore.User
	var inv *Invitation
	var failed error
	err := s.store.Write(ctx, "accept invitation", func(tx *userstore.Tx) error {
		var err error
		inv, err = byHashTx(tx, hash)
		if err != nil {
			return err
		}
		if err := StatusError(inv.effectiveStatus(tx.Now())); err != nil {
			return err
		}
		if opts.BindEmail && (!id.EmailVerified || userstore.FoldKey(id.Email) != userstore.FoldKey(inv.Email)) {
			return ErrEmailMismatch
		}
		actor := "invitation:" + inv.ID
		owner, err := tx.IdentityOwner(id.Issuer, id.Sub)
		switch {
		case err == nil && (inv.UserID == "" || owner != inv.UserID):
			return ErrLinkedElsewhere
		case err == nil:
			user, err = tx.User(owner)
		case !errors.Is(err, userstore.ErrNotFound):
			return err
		case inv.UserID != "":
			user, err = tx.User(inv.UserID)
			if err == nil && !user.Active {
				failed = errors.New("the invited user is disabled")
				return ErrFailed
			}
			if err == nil {
				err = tx.LinkIdentity(actor, user.ID, id.Issuer, id.Sub, id.Provider)
			}
		default:
			user, err = tx.CreateUser(actor, newUser(id, inv))
			if err == nil {
				err = tx.LinkIdentity(actor, user.ID, id.Issuer, id.Sub, id.Provider)
			}
		}
		if err != nil {
			return err
		}
		if len(inv.Roles) > 0 {
			if err := tx.GrantRoles(actor, user.ID, inv.Roles...); err != nil {
				return err
			}
		}
		if err := setStatus(tx, inv.ID, Accepted, "", user.ID); err != nil {
			return err
		}
		inv.Status, inv.StatusAt, inv.AcceptedBy = Accepted, tx.Now(), user.ID
		if user, err = tx.User(user.ID); err != nil { // with the new roles
			return err
		}
		return tx.Audit(actor, ActionAccept, inv.ID, map[string]any{
			"user_id": user.ID, "issuer": id.Issuer, "sub": id.Sub, "roles": inv.Roles,
		})
	})
	if failed != nil {
		s.markFailed(ctx, inv.ID, failed.Error())
	}
	if err != nil {
		return nil, nil, err
	}
	return user, inv, nil
}

// markFailed records that an invitation can never be accepted. Best
// effort: Accept has already refused.
func (s *Service) markFailed(ctx context.Context, id, note string) {
	_ = s.store.Write(ctx, "fail invitation", func(tx *userstore.Tx) error {
		if err := setStatus(tx, id, Failed, note, ""); err != nil {
			return err
		}
		return tx.Audit("system", ActionFail, id, map[string]any{"reason": note})
	})
}

// StatusError is the acceptance error of a status (ErrUsed for
// accepted, …), nil for pending.
func StatusError(st Status) error {
	switch st {
	case Pending:
		return nil
	case Accepted:
		return ErrUsed
	case Revoked:
		return ErrRevoked
	case Expired:
		return ErrExpired
	case Failed:
		return ErrFailed
	}
	return ErrUnknown
}

// newUser is the local user an invitation for nobody in particular
// creates: named as Cognito names the identity; its email is the
// identity's when verified, else the invitation's (an operator chose it).
func newUser(id Identity, inv *Invitation) userstore.NewUser {
	email := inv.Email
	if id.EmailVerified && id.Email != "" {
		email = id.Email
	}
	return userstore.NewUser{Username: id.Username, Email: email, GivenName: id.GivenName, FamilyName: id.FamilyName}
}

func byHashTx(tx *userstore.Tx, hash string) (*Invitation, error) {
	inv, err := scanInvitation(tx.QueryRow(`SELECT `+invitationCols+` FROM invitations WHERE secret_hash = ?`, hash))
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, ErrUnknown
		}
		return nil, err
	}
	return inv, nil
}
