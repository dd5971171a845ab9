// Package roles turns what the provider says of a user (Cognito groups,
// ID-token claims) into local roles, and keeps the roles a user holds from
// the provider in step with it: added when a group appears, removed when it
// disappears, never touching roles granted by hand or by an invitation.
package roles

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/caddy-cognito/caddy-cognito/internal/identity"
	"github.com/caddy-cognito/caddy-cognito/userstore"
)

// Rule grants Roles to a member of Group, or to an identity whose claim
// Claim equals (or, for a list claim, holds) Value. Set Group, or Claim
// and Value.
type Rule struct {
	Group string
	Claim string
	Value string
	Roles []string
}

// Facts is what the rules read of an identity (*identity.Identity).
type Facts interface {
	HasAnyGroup(groups []string) bool
	ClaimHasAny(name string, values []string) bool
}

var _ Facts = (*identity.Identity)(nil)

// Store is what syncing needs of the identity store (*userstore.Store).
type Store interface {
	SyncProviderRoles(ctx context.Context, actor, userID string, want []string) (bool, error)
}

var _ Store = (*userstore.Store)(nil)

type rule struct {
	group  []string // one group, as HasAnyGroup takes it
	claim  string
	value  []string
	roles  []string
	fromID bool // a claim rule: decided only from ID-token claims
}

// Mapper holds the configured rules; the zero rules map to no roles (and
// so take away any role the provider granted before).
type Mapper struct {
	rules []rule
	// claimOnly are the roles that claim rules grant and no group rule
	// does, sorted: the roles an access token cannot decide (see Wanted).
	claimOnly []string
}

// New checks the rules and builds their mapper.
func New(rules []Rule) (*Mapper, error) {
	m := &Mapper{}
	var claimRoles, groupRoles []string
	for i, r := range rules {
		roles, err := userstore.CheckRoles(r.Roles)
		if err != nil {
			return nil, fmt.Errorf("roles rule %d: %w", i+1, err)
		}
		if len(roles) == 0 {
			return nil, fmt.Errorf("roles rule %d: no role to grant", i+1)
		}
		nr := rule{roles: roles}
		switch {
		case r.Group != "" && r.Claim == "" && r.Value == "":
			nr.group = []string{r.Group}
			groupRoles = append(groupRoles, roles...)
		case r.Group == "" && r.Claim == "email":
			// An ID token's email may be unverified (email_verified
			// false): a user could name any address and take its roles.
			return nil, fmt.Errorf("roles rule %d: claim email is not a safe rule (the address may be unverified); use a group, or an attribute users cannot write", i+1)
		case r.Group == "" && strings.TrimSpace(r.Claim) != "" && r.Value != "":
			nr.claim, nr.value, nr.fromID = r.Claim, []string{r.Value}, true
			claimRoles = append(claimRoles, roles...)
		default:
			return nil, fmt.Errorf("roles rule %d: set group, or claim and value", i+1)
		}
		m.rules = append(m.rules, nr)
	}
	for _, r := range sortedSet(claimRoles) {
		if !slices.Contains(groupRoles, r) {
			m.claimOnly = append(m.claimOnly, r)
		}
	}
	return m, nil
}

// Wanted returns the provider roles an identity should hold, sorted,
// given the ones it holds now. Group rules are decided by every token;
// claim rules only by ID-token claims (idClaims), which decide every rule.
// Cognito access tokens carry no custom attributes, so with access-token
// facts a role is wanted when a group rule grants it, and a held role
// that only claim rules grant is kept as it is (undecided), neither
// taken away nor added. A role that a group rule grants too is decided
// by the group rules alone there: leaving the group takes it away at the
// next token of any kind, rather than keep it on a claim nobody checked
// (deny unless proven; an access-token-only client would keep it
// forever). If a claim rule grants it after all, the next ID token gives
// it back; a role named by both kinds of rule thus comes and goes when a
// user who is not in the group alternates ID and access tokens.
func (m *Mapper) Wanted(f Facts, idClaims bool, have []string) []string {
	var want []string
	for _, r := range m.rules {
		if m.grants(r, f, idClaims) {
			want = append(want, r.roles...)
		}
	}
	for _, h := range have {
		if m.undecided(h, idClaims) {
			want = append(want, h)
		}
	}
	return sortedSet(want)
}

// undecided reports whether the facts leave the held role as it is: an
// access token and a role only claim rules grant.
func (m *Mapper) undecided(role string, idClaims bool) bool {
	return !idClaims && slices.Contains(m.claimOnly, role)
}

// holds reports whether the identity already holds exactly the provider
// roles Wanted would return, without building the set: the hot path of a
// mapped bearer token, where nothing changes request after request.
func (m *Mapper) holds(f Facts, idClaims bool, have []string) bool {
	for _, r := range m.rules {
		if !m.grants(r, f, idClaims) {
			continue
		}
		for _, role := range r.roles {
			if !slices.Contains(have, role) {
				return false
			}
		}
	}
	for _, h := range have {
		if m.undecided(h, idClaims) {
			continue // left as it is
		}
		granted := false
		for _, r := range m.rules {
			if slices.Contains(r.roles, h) && m.grants(r, f, idClaims) {
				granted = true
				break
			}
		}
		if !granted {
			return false
		}
	}
	return true
}

// grants reports whether rule r applies to the identity.
func (m *Mapper) grants(r rule, f Facts, idClaims bool) bool {
	if r.fromID {
		return idClaims && f.ClaimHasAny(r.claim, r.value)
	}
	return f.HasAnyGroup(r.group)
}

func sortedSet(l []string) []string {
	if len(l) == 0 {
		return nil
	}
	sort.Strings(l)
	return slices.Compact(l)
}

// Syncer keeps users' provider roles in step, through one store.
type Syncer struct {
	m     *Mapper
	store Store
}

// NewSyncer syncs through store.
func NewSyncer(m *Mapper, store Store) *Syncer {
	return &Syncer{m: m, store: store}
}

// Actor is the audit log's actor of a change seen through pool's tokens.
func Actor(pool string) string { return "provider:" + pool }

// Sync makes u's provider roles the ones id calls for (idClaims: id's
// claims are an ID token's), audited as pool's provider, and reports
// whether the store changed. When they already are, it costs the rules
// and a comparison: no store access, no allocation.
func (s *Syncer) Sync(ctx context.Context, pool string, u *userstore.User, f Facts, idClaims bool) (bool, error) {
	if s.m.holds(f, idClaims, u.ProviderRoles) {
		return false, nil
	}
	return s.store.SyncProviderRoles(ctx, Actor(pool), u.ID, s.m.Wanted(f, idClaims, u.ProviderRoles))
}

// SyncIDClaims is Sync for a sign-in or a refresh: verified ID token
// claims, whose groups are `cognito:groups`.
func (s *Syncer) SyncIDClaims(ctx context.Context, pool string, u *userstore.User, raw json.RawMessage) (bool, error) {
	c, err := identity.ParseIDClaims(raw)
	if err != nil {
		return false, err
	}
	return s.Sync(ctx, pool, u, &identity.Identity{Groups: c.Groups, RawClaims: raw}, true)
}
