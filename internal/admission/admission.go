// Package admission decides who may sign in the first time: the rules that
// link a new Cognito identity to a local user or create one, and the
// profile refresh at every sign-in.
package admission

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/caddy-cognito/caddy-cognito/internal/identity"
	"github.com/caddy-cognito/caddy-cognito/invitations"
	"github.com/caddy-cognito/caddy-cognito/userstore"
	"go.uber.org/zap"
)

// Rule lets a Cognito identity that is not linked to a local user yet
// sign in the first time. Rules are tried in order; the first that fits
// decides.
type Rule struct {
	// Rule is one of:
	//   - `sso_migration`: an identity whose `custom:from_sso` claim is "1"
	//     is linked to the existing local user with the same username
	//     (users moved from an older single sign-on);
	//   - `trusted_provider`: an identity from one of Providers (Cognito's
	//     `identities[0].providerName`; `*` for any federated provider) is
	//     linked to the local user with the same email, or, with Create,
	//     gets a new local user when there is none;
	//   - `email_domain`: an identity with a verified email in one of
	//     Domains gets a new local user;
	//   - `any`: every user of the pool gets a new local user;
	//   - `invited`: an identity arriving with a valid invitation (needs
	//     `cognito_invitations`).
	// A new local user never takes over an existing one: a username or
	// email that is already taken refuses the sign-in.
	Rule string `json:"rule"`

	// Providers are the federated provider names `trusted_provider` trusts.
	Providers []string `json:"providers,omitempty"`

	// Create lets `trusted_provider` create a local user when no local
	// user has the identity's email.
	Create bool `json:"create,omitempty"`

	// Domains are the email domains `email_domain` admits (exact, ASCII
	// letters case-insensitive, any other character as written; no
	// subdomains unless listed).
	Domains []string `json:"domains,omitempty"`
}

// admitter turns ID token claims into an admission, or says no (ok false).
type admitter struct {
	name  string
	admit func(c *identity.IDClaims) (a userstore.Admission, ok bool)
}

func buildAdmitters(rules []Rule) ([]admitter, error) {
	var out []admitter
	for i, r := range rules {
		a, err := r.admitter()
		if err != nil {
			return nil, fmt.Errorf("admit rule %d (%s): %w", i+1, r.Rule, err)
		}
		out = append(out, a)
	}
	return out, nil
}

func (r Rule) admitter() (admitter, error) {
	a := admitter{name: r.Rule}
	switch r.Rule {
	case "sso_migration":
		a.admit = func(c *identity.IDClaims) (userstore.Admission, bool) {
			return userstore.Admission{MatchUsername: c.Username(), OnlyUnlinked: true}, c.FromSSO == "1" && c.CognitoUsername != ""
		}
	case "trusted_provider":
		if len(r.Providers) == 0 {
			return a, errors.New("name at least one provider, or *")
		}
		trusted := map[string]bool{}
		for _, p := range r.Providers {
			trusted[p] = true
		}
		a.admit = func(c *identity.IDClaims) (userstore.Admission, bool) {
			p := c.Provider()
			if p == "" || (!trusted["*"] && !trusted[p]) || c.Email == "" {
				return userstore.Admission{}, false
			}
			adm := userstore.Admission{Provider: p, MatchEmail: c.Email}
			if r.Create {
				adm.Create = newLocalUser(c, true)
			}
			return adm, true
		}
	case "email_domain":
		if len(r.Domains) == 0 {
			return a, errors.New("name at least one domain")
		}
		domains := map[string]bool{}
		for _, d := range r.Domains {
			domains[userstore.FoldKey(strings.TrimPrefix(strings.TrimSpace(d), "@"))] = true
		}
		a.admit = func(c *identity.IDClaims) (userstore.Admission, bool) {
			at := strings.LastIndexByte(c.Email, '@')
			if at < 0 || !c.EmailVerified() || !domains[userstore.FoldKey(c.Email[at+1:])] {
				return userstore.Admission{}, false
			}
			return userstore.Admission{Provider: c.Provider(), Create: newLocalUser(c, true)}, true
		}
	case "any":
		a.admit = func(c *identity.IDClaims) (userstore.Admission, bool) {
			return userstore.Admission{Provider: c.Provider(), Create: newLocalUser(c, c.EmailVerified())}, true
		}
	case "invited":
		// Carried out by admitInvited: it needs the invitation the
		// sign-in started from, not only the claims.
		a.admit = func(*identity.IDClaims) (userstore.Admission, bool) { return userstore.Admission{}, false }
	default:
		return a, fmt.Errorf("unknown rule; use sso_migration, trusted_provider, email_domain, any or invited")
	}
	return a, nil
}

// newLocalUser is the local user a first sign-in creates. The email is
// kept only when it can be trusted.
func newLocalUser(c *identity.IDClaims, trustEmail bool) *userstore.NewUser {
	nu := &userstore.NewUser{Username: c.Username(), GivenName: c.GivenName, FamilyName: c.FamilyName}
	if trustEmail {
		nu.Email = c.Email
	}
	return nu
}

// Refusal is a sign-in that must not go on: Message is for the page,
// Reason for the log.
type Refusal struct{ Message, Reason string }

func (r *Refusal) Error() string { return "sign-in refused: " + r.Reason }

// Store is what admission needs of the identity store.
type Store interface {
	LookupIdentity(ctx context.Context, issuer, sub string) (*userstore.User, error)
	AdmitIdentity(ctx context.Context, actor string, a userstore.Admission) (*userstore.User, error)
	UpdateUser(ctx context.Context, actor, userID string, upd userstore.UserUpdate) (*userstore.User, error)
}

// Invitations accepts the invitation a sign-in started from (`admit
// invited`); Messages explains each refusal key of invitations.Refusal.
type Invitations struct {
	Accept   func(ctx context.Context, secret string, id invitations.Identity) (*userstore.User, error)
	Messages map[string]string
}

// Config is what an Admitter works with besides its rules.
type Config struct {
	Store          Store
	RefusedMessage string       // shown to an identity no rule admits
	Invitations    *Invitations // nil unless a rule is `invited`
	Logger         *zap.Logger
}

// Admitter carries out one handler's admission rules.
type Admitter struct {
	rules []admitter
	cfg   Config
}

// New checks the rules and returns their Admitter.
func New(rules []Rule, cfg Config) (*Admitter, error) {
	built, err := buildAdmitters(rules)
	if err != nil {
		return nil, err
	}
	for _, r := range rules {
		if r.Rule == "invited" && cfg.Invitations == nil {
			return nil, errors.New("admit invited needs invitations")
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	return &Admitter{rules: built, cfg: cfg}, nil
}

// Admit returns the active local user of a verified identity: the linked
// one, or one the rules link or create. invitation is the secret of the
// invitation link the sign-in started from, or "". A *Refusal says why
// the identity may not sign in; any other error is the store failing.
// Each sign-in also refreshes the local profile from the claims.
func (a *Admitter) Admit(ctx context.Context, c *identity.IDClaims, invitation string) (*userstore.User, error) {
	u, _, err := a.AdmitBy(ctx, c, invitation)
	return u, err
}

// RuleLinked is the rule AdmitBy names for an identity already linked to
// a local user.
const RuleLinked = "linked"

// AdmitBy is Admit that also names the rule that admitted the identity:
// RuleLinked for one already linked, else the rule's name (`invited`,
// `any`…); "" when it was not admitted.
func (a *Admitter) AdmitBy(ctx context.Context, c *identity.IDClaims, invitation string) (*userstore.User, string, error) {
	store := a.cfg.Store
	user, err := store.LookupIdentity(ctx, c.Issuer, c.Subject)
	switch {
	case err == nil:
		return a.refreshProfile(ctx, user, c, false), RuleLinked, nil
	case errors.Is(err, userstore.ErrDisabled):
		return nil, "", &Refusal{Message: "Your account on this site is disabled.", Reason: "local user disabled"}
	case !errors.Is(err, userstore.ErrNotFound):
		return nil, "", err
	}
	for _, r := range a.rules {
		if r.name == "invited" && invitation != "" {
			u, err := a.admitInvited(ctx, c, invitation)
			if err != nil {
				return nil, "", err
			}
			return u, r.name, nil
		}
		adm, ok := r.admit(c)
		if !ok {
			continue
		}
		adm.Issuer, adm.Sub = c.Issuer, c.Subject
		user, err := store.AdmitIdentity(ctx, "login:"+r.name, adm)
		switch {
		case err == nil && !user.Active, errors.Is(err, userstore.ErrDisabled):
			return nil, "", &Refusal{Message: "Your account on this site is disabled.", Reason: "local user disabled"}
		case err == nil:
			a.cfg.Logger.Info("first sign-in admitted", zap.String("rule", r.name), zap.String("user", user.ID), zap.String("sub", c.Subject))
			return a.refreshProfile(ctx, user, c, r.name == "trusted_provider"), r.name, nil
		case errors.Is(err, userstore.ErrNotFound):
			continue // nothing to link to; a later rule may fit
		case errors.Is(err, userstore.ErrConflict), errors.Is(err, userstore.ErrInvalid):
			return nil, "", &Refusal{Message: a.cfg.RefusedMessage, Reason: "rule " + r.name + ": " + err.Error()}
		default:
			return nil, "", err
		}
	}
	return nil, "", &Refusal{Message: a.cfg.RefusedMessage, Reason: "no admission rule fits"}
}

// admitInvited admits a first-time identity with the invitation its
// sign-in started from: accepting it links (or creates) the invited user
// and grants the roles. A refusal says why, now that the person is signed
// in.
func (a *Admitter) admitInvited(ctx context.Context, c *identity.IDClaims, invitation string) (*userstore.User, error) {
	inv := a.cfg.Invitations
	user, err := inv.Accept(ctx, invitation, Invitee(c))
	if err != nil {
		key, _ := invitations.Refusal(err)
		if key == "" {
			return nil, err
		}
		return nil, &Refusal{Message: inv.Messages[key], Reason: "invitation: " + err.Error()}
	}
	a.cfg.Logger.Info("first sign-in admitted by invitation", zap.String("user", user.ID), zap.String("sub", c.Subject))
	return a.refreshProfile(ctx, user, c, false), nil
}

// Invitee is the identity an invitation is accepted for.
func Invitee(c *identity.IDClaims) invitations.Identity {
	return invitations.Identity{
		Issuer: c.Issuer, Sub: c.Subject, Provider: c.Provider(), Username: c.Username(),
		Email: c.Email, EmailVerified: c.EmailVerified(), GivenName: c.GivenName, FamilyName: c.FamilyName,
	}
}

// refreshProfile brings the local profile in line with the claims: names
// always, the email only when verified or from a trusted provider. A
// failure is logged; it never stops a sign-in.
func (a *Admitter) refreshProfile(ctx context.Context, u *userstore.User, c *identity.IDClaims, trustedProvider bool) *userstore.User {
	var upd userstore.UserUpdate
	changed := false
	if c.Email != "" && (c.EmailVerified() || trustedProvider) && userstore.FoldKey(c.Email) != userstore.FoldKey(u.Email) {
		upd.Email, changed = &c.Email, true
	}
	if c.GivenName != "" && c.GivenName != u.GivenName {
		upd.GivenName, changed = &c.GivenName, true
	}
	if c.FamilyName != "" && c.FamilyName != u.FamilyName {
		upd.FamilyName, changed = &c.FamilyName, true
	}
	if !changed {
		return u
	}
	nu, err := a.cfg.Store.UpdateUser(ctx, "login:profile", u.ID, upd)
	if err != nil {
		a.cfg.Logger.Warn("could not refresh the local profile", zap.String("user", u.ID), zap.Error(err))
		return u
	}
	return nu
}
