// Package invitations lets an operator invite a person to a site: the
// invitee gets a link, signs in with Cognito, and that first-time identity
// is bound to the right local user with pre-assigned roles.
//
// It never imports Caddy. Invitations live in the identity store's
// database (table `invitations`, schema in userstore) and are changed
// through userstore.Tx, so that accepting one links the identity, creates
// the user when needed, grants the roles and marks the invitation used in
// one transaction.
package invitations

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/caddy-cognito/caddy-cognito/userstore"
)

// Status of an invitation. Only a pending invitation changes, and only
// once: to accepted, revoked, expired or failed.
type Status string

// The statuses of an invitation.
const (
	// Pending is a new invitation, waiting for its link to be used.
	Pending Status = "pending"
	// Accepted is an invitation that was used to sign in.
	Accepted Status = "accepted"
	// Revoked is an invitation withdrawn before it was used.
	Revoked Status = "revoked"
	// Expired is an invitation whose link was not used in time.
	Expired Status = "expired"
	// Failed is an invitation that can never be accepted: the local user
	// it was for was disabled or removed.
	Failed Status = "failed"
)

// Invitation is one invitation. The secret of its link is not here: it is
// shown once, when created or re-sent, and stored only as a hash.
type Invitation struct {
	ID         string     `json:"id"`
	Email      string     `json:"email"`
	UserID     string     `json:"user_id,omitempty"` // an existing local user to link, or "" to create one
	Roles      []string   `json:"roles"`
	CreatedBy  string     `json:"created_by"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  time.Time  `json:"expires_at"`
	Status     Status     `json:"status"`
	StatusAt   time.Time  `json:"status_at"`
	StatusNote string     `json:"status_note,omitempty"`
	AcceptedBy string     `json:"accepted_by,omitempty"` // the local user id
	LastSentAt *time.Time `json:"last_sent_at,omitempty"`
}

// Errors of acceptance. A page shown before sign-in must not tell them
// apart (ErrUnknown, ErrExpired, ErrUsed and ErrRevoked look alike there).
var (
	ErrUnknown         = errors.New("no such invitation")
	ErrExpired         = errors.New("the invitation has expired")
	ErrUsed            = errors.New("the invitation has already been used")
	ErrRevoked         = errors.New("the invitation was revoked")
	ErrFailed          = errors.New("the invitation can no longer be accepted")
	ErrEmailMismatch   = errors.New("the invitation is for another email address")
	ErrLinkedElsewhere = errors.New("this sign-in already belongs to another account on this site")
)

// Audit actions.
const (
	ActionCreate = "invitation.create"
	ActionAccept = "invitation.accept"
	ActionRevoke = "invitation.revoke"
	ActionResend = "invitation.resend"
	ActionFail   = "invitation.fail"
)

// Defaults and bounds.
const (
	DefaultTTL = 14 * 24 * time.Hour
	MaxTTL     = 365 * 24 * time.Hour
	secretLen  = 32 // random bytes in a link secret: 256 bits
)

// Service is the invitations of one store.
type Service struct {
	store *userstore.Store
	now   func() time.Time
}

// New returns the invitations of store. now is the clock (nil: time.Now).
func New(store *userstore.Store, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: store, now: now}
}

// newSecret returns a link secret (256 bits from crypto/rand, base64url)
// and its hash.
func newSecret() (secret, hash string, err error) {
	b := make([]byte, secretLen)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("invitations: random: %w", err)
	}
	secret = base64.RawURLEncoding.EncodeToString(b)
	return secret, HashSecret(secret), nil
}

// HashSecret is how the store knows a link secret. A string that cannot
// be a secret hashes to "", which matches nothing.
func HashSecret(secret string) string {
	if len(secret) != base64.RawURLEncoding.EncodedLen(secretLen) {
		return ""
	}
	if _, err := base64.RawURLEncoding.DecodeString(secret); err != nil {
		return ""
	}
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

func newID() (string, error) {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "inv_" + hex.EncodeToString(b), nil
}

// CreateRequest describes an invitation to make.
type CreateRequest struct {
	Email  string
	UserID string // optional: an existing, active local user
	Roles  []string
	TTL    time.Duration // 0: DefaultTTL
}

// Create stores a new pending invitation and returns it with the secret of
// its link (shown this once).
func (s *Service) Create(ctx context.Context, actor string, req CreateRequest) (*Invitation, string, error) {
	req.Email = strings.TrimSpace(req.Email)
	if req.Email == "" {
		return nil, "", userstore.Invalidf("an invitation needs an email address")
	}
	if err := userstore.CheckEmail(req.Email); err != nil {
		return nil, "", err
	}
	roles, err := userstore.CheckRoles(req.Roles)
	if err != nil {
		return nil, "", err
	}
	if req.TTL == 0 {
		req.TTL = DefaultTTL
	}
	if req.TTL < time.Minute || req.TTL > MaxTTL {
		return nil, "", userstore.Invalidf("expiry must be between a minute and %s from now", MaxTTL)
	}
	secret, hash, err := newSecret()
	if err != nil {
		return nil, "", err
	}
	id, err := newID()
	if err != nil {
		return nil, "", err
	}
	var inv *Invitation
	err = s.store.Write(ctx, "create invitation", func(tx *userstore.Tx) error {
		now := tx.Now()
		if req.UserID != "" {
			u, err := tx.User(req.UserID)
			if err != nil {
				return err
			}
			if !u.Active {
				return userstore.Invalidf("user %s is disabled", u.Username)
			}
		}
		rolesJSON, _ := json.Marshal(roles)
		if _, err := tx.Exec(`INSERT INTO invitations (id, secret_hash, email, email_lower, user_id, roles, created_by,
			created_at, expires_at, status, status_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			id, hash, req.Email, userstore.FoldKey(req.Email), nullable(req.UserID), string(rolesJSON), actor,
			userstore.FormatTime(now), userstore.FormatTime(now.Add(req.TTL)), string(Pending), userstore.FormatTime(now)); err != nil {
			return err
		}
		inv = &Invitation{ID: id, Email: req.Email, UserID: req.UserID, Roles: roles, CreatedBy: actor,
			CreatedAt: now, ExpiresAt: now.Add(req.TTL).UTC().Truncate(time.Microsecond), Status: Pending, StatusAt: now}
		return tx.Audit(actor, ActionCreate, id, map[string]any{"email": req.Email, "user_id": req.UserID, "roles": roles})
	})
	if err != nil {
		return nil, "", err
	}
	return inv, secret, nil
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// Resend gives a pending invitation a new link secret (the old link stops
// working: secrets are stored only as hashes, so the old one cannot be
// sent again) and returns it.
func (s *Service) Resend(ctx context.Context, actor, id string) (*Invitation, string, error) {
	secret, hash, err := newSecret()
	if err != nil {
		return nil, "", err
	}
	var inv *Invitation
	err = s.store.Write(ctx, "resend invitation", func(tx *userstore.Tx) error {
		var err error
		if inv, err = getTx(tx, id); err != nil {
			return err
		}
		if st := inv.effectiveStatus(tx.Now()); st != Pending {
			return userstore.Conflictf("invitation %s is %s, not pending", id, st)
		}
		if _, err := tx.Exec(`UPDATE invitations SET secret_hash = ? WHERE id = ?`, hash, id); err != nil {
			return err
		}
		return tx.Audit(actor, ActionResend, id, nil)
	})
	if err != nil {
		return nil, "", err
	}
	return inv, secret, nil
}

// MarkSent records that the invitation's email was sent at t.
func (s *Service) MarkSent(ctx context.Context, id string, t time.Time) error {
	return s.store.Write(ctx, "mark invitation sent", func(tx *userstore.Tx) error {
		_, err := tx.Exec(`UPDATE invitations SET last_sent_at = ? WHERE id = ?`, userstore.FormatTime(t), id)
		return err
	})
}

// Revoke ends a pending invitation.
func (s *Service) Revoke(ctx context.Context, actor, id string) error {
	return s.store.Write(ctx, "revoke invitation", func(tx *userstore.Tx) error {
		inv, err := getTx(tx, id)
		if err != nil {
			return err
		}
		if st := inv.effectiveStatus(tx.Now()); st != Pending {
			return userstore.Conflictf("invitation %s is %s, not pending", id, st)
		}
		if err := setStatus(tx, id, Revoked, "", ""); err != nil {
			return err
		}
		return tx.Audit(actor, ActionRevoke, id, nil)
	})
}

// setStatus moves a pending invitation to st; it fails with ErrUsed when
// the invitation is no longer pending (the guard that makes one of several
// racing acceptances the only winner).
func setStatus(tx *userstore.Tx, id string, st Status, note, acceptedBy string) error {
	res, err := tx.Exec(`UPDATE invitations SET status = ?, status_at = ?, status_note = ?, accepted_by = ?
		WHERE id = ? AND status = ?`, string(st), userstore.FormatTime(tx.Now()), note, nullable(acceptedBy), id, string(Pending))
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n != 1 {
		return ErrUsed
	}
	return nil
}

// effectiveStatus is the status as of now: a pending invitation past its
// expiry is expired even before the sweep marks it.
func (inv *Invitation) effectiveStatus(now time.Time) Status {
	if inv.Status == Pending && !now.Before(inv.ExpiresAt) {
		return Expired
	}
	return inv.Status
}

// EffectiveStatus is Status, with a pending invitation past its expiry
// reported as expired.
func (inv *Invitation) EffectiveStatus(now time.Time) Status { return inv.effectiveStatus(now) }

const invitationCols = `id, email, COALESCE(user_id, ''), roles, created_by, created_at, expires_at, status, status_at,
	status_note, COALESCE(accepted_by, ''), last_sent_at`

type scanner interface{ Scan(dest ...any) error }

func scanInvitation(r scanner) (*Invitation, error) {
	var inv Invitation
	var roles, created, expires, status, statusAt string
	var sent sql.NullString
	if err := r.Scan(&inv.ID, &inv.Email, &inv.UserID, &roles, &inv.CreatedBy, &created, &expires, &status, &statusAt,
		&inv.StatusNote, &inv.AcceptedBy, &sent); err != nil {
		return nil, err
	}
	inv.Status = Status(status)
	if err := json.Unmarshal([]byte(roles), &inv.Roles); err != nil {
		return nil, fmt.Errorf("invitation %s: roles: %w", inv.ID, err)
	}
	var err error
	for _, f := range []struct {
		dst *time.Time
		src string
	}{{&inv.CreatedAt, created}, {&inv.ExpiresAt, expires}, {&inv.StatusAt, statusAt}} {
		if *f.dst, err = userstore.ParseTime(f.src); err != nil {
			return nil, err
		}
	}
	if sent.Valid {
		t, err := userstore.ParseTime(sent.String)
		if err != nil {
			return nil, err
		}
		inv.LastSentAt = &t
	}
	return &inv, nil
}

func getTx(tx *userstore.Tx, id string) (*Invitation, error) {
	inv, err := scanInvitation(tx.QueryRow(`SELECT `+invitationCols+` FROM invitations WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, userstore.NotFoundf("no invitation %q", id)
	}
	return inv, err
}
