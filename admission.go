package caddycognito

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

// AdmitRule lets a Cognito identity that is not linked to a local user yet
// sign in the first time. Rules are tried in order; the first that fits
// decides.
type AdmitRule struct {
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

func buildAdmitters(rules []AdmitRule) ([]admitter, error) {
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

func (r AdmitRule) admitter() (admitter, error) {
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
			if p == "" || !(trusted["*"] || trusted[p]) || c.Email == "" {
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

// refusal is a sign-in that must not go on; message is for the page.
type refusal struct{ message, reason string }

func (r *refusal) Error() string { return "sign-in refused: " + r.reason }

// admitIdentity returns the active local user of a verified identity: the
// linked one, or one the admission rules link or create. Each sign-in also
// refreshes the local profile from the claims.
func (l *Login) admitIdentity(ctx context.Context, c *identity.IDClaims, invitation string) (*userstore.User, error) {
	store := l.sessions.store
	user, err := store.LookupIdentity(ctx, c.Issuer, c.Subject)
	switch {
	case err == nil:
		return l.refreshProfile(ctx, user, c, false), nil
	case errors.Is(err, userstore.ErrDisabled):
		return nil, &refusal{message: "Your account on this site is disabled.", reason: "local user disabled"}
	case !errors.Is(err, userstore.ErrNotFound):
		return nil, err
	}
	for _, a := range l.admit {
		if a.name == "invited" && invitation != "" {
			return l.admitInvited(ctx, c, invitation)
		}
		adm, ok := a.admit(c)
		if !ok {
			continue
		}
		adm.Issuer, adm.Sub = c.Issuer, c.Subject
		user, err := store.AdmitIdentity(ctx, "login:"+a.name, adm)
		switch {
		case err == nil && !user.Active, errors.Is(err, userstore.ErrDisabled):
			return nil, &refusal{message: "Your account on this site is disabled.", reason: "local user disabled"}
		case err == nil:
			l.logger.Info("first sign-in admitted", zap.String("rule", a.name), zap.String("user", user.ID), zap.String("sub", c.Subject))
			return l.refreshProfile(ctx, user, c, a.name == "trusted_provider"), nil
		case errors.Is(err, userstore.ErrNotFound):
			continue // nothing to link to; a later rule may fit
		case errors.Is(err, userstore.ErrConflict), errors.Is(err, userstore.ErrInvalid):
			return nil, &refusal{message: l.RefusedMessage, reason: "rule " + a.name + ": " + err.Error()}
		default:
			return nil, err
		}
	}
	return nil, &refusal{message: l.RefusedMessage, reason: "no admission rule fits"}
}

// admitInvited admits a first-time identity with the invitation its
// sign-in started from: accepting it links (or creates) the invited user
// and grants the roles. A refusal says why, now that the person is signed
// in.
func (l *Login) admitInvited(ctx context.Context, c *identity.IDClaims, invitation string) (*userstore.User, error) {
	user, _, err := invitations.New(l.sessions.store, nil).Accept(ctx, invitation, claimsInvitee(c),
		invitations.AcceptOptions{BindEmail: l.invites.cfg.BindEmail})
	if err != nil {
		key, _ := invitationRefusal(err)
		if key == "" {
			return nil, err
		}
		return nil, &refusal{message: l.invites.messages[key], reason: "invitation: " + err.Error()}
	}
	l.logger.Info("first sign-in admitted by invitation", zap.String("user", user.ID), zap.String("sub", c.Subject))
	return l.refreshProfile(ctx, user, c, false), nil
}

// refreshProfile brings the local profile in line with the claims: names
// always, the email only when verified or from a trusted provider. A
// failure is logged; it never stops a sign-in.
func (l *Login) refreshProfile(ctx context.Context, u *userstore.User, c *identity.IDClaims, trustedProvider bool) *userstore.User {
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
	nu, err := l.sessions.store.UpdateUser(ctx, "login:profile", u.ID, upd)
	if err != nil {
		l.logger.Warn("could not refresh the local profile", zap.String("user", u.ID), zap.Error(err))
		return u
	}
	return nu
}
