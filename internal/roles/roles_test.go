package roles

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddy-cognito/caddy-cognito/internal/identity"
	"github.com/caddy-cognito/caddy-cognito/userstore"
)

var testRules = []Rule{
	{Group: "admins", Roles: []string{"admin"}},
	{Group: "editors", Roles: []string{"editor", "reviewer"}},
	{Claim: "custom:tenant", Value: "acme", Roles: []string{"tenant-acme"}},
	{Claim: "cognito:groups", Value: "ops", Roles: []string{"operator"}},
	// viewer is named by a group rule and by a claim rule
	{Group: "staff", Roles: []string{"viewer"}},
	{Claim: "custom:level", Value: "senior", Roles: []string{"viewer"}},
}

func idWith(groups []string, claims string) *identity.Identity {
	return &identity.Identity{Groups: groups, RawClaims: json.RawMessage(claims)}
}

func TestWanted(t *testing.T) {
	m, err := New(testRules)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what     string
		groups   []string
		claims   string
		idClaims bool
		have     []string
		want     string
	}{
		{"no group, no claim", nil, `{}`, true, nil, ""},
		{"one group", []string{"admins"}, `{}`, true, nil, "admin"},
		{"two groups, overlapping roles once", []string{"editors", "admins", "x"}, `{}`, true, nil, "admin,editor,reviewer"},
		{"string claim", nil, `{"custom:tenant":"acme"}`, true, nil, "tenant-acme"},
		{"string claim, other value", nil, `{"custom:tenant":"globex"}`, true, nil, ""},
		{"list claim", []string{"ops"}, `{"cognito:groups":["staff","ops"]}`, true, nil, "operator"},
		{"the group disappears", nil, `{}`, true, []string{"admin", "tenant-acme"}, ""},
		// access tokens decide group rules; roles only claim rules grant stay as they are
		{"access token keeps claim roles", []string{"admins"}, `{}`, false, []string{"tenant-acme", "editor"}, "admin,tenant-acme"},
		{"access token does not add claim roles", nil, `{"custom:tenant":"acme"}`, false, nil, ""},
		{"access token: leaving the group removes its role", nil, `{}`, false, []string{"admin", "tenant-acme"}, "tenant-acme"},
		{"access token: a stale role no rule grants goes", nil, `{}`, false, []string{"stale", "tenant-acme"}, "tenant-acme"},
		// viewer, named by the staff group rule and the custom:level claim
		// rule, after the user left staff, seen through an access token
		// (which cannot tell whether custom:level is senior): removed. An
		// access token cannot prove the claim, and failing closed costs at
		// most the role until the next ID token (which gives it back if
		// the claim grants it), whereas keeping it would let a user who
		// left the group keep the role for as long as they present access
		// tokens only, i.e. forever. Roles only claim rules grant are not
		// affected, so they do not come and go (see TestSyncAlternating).
		{"access token: group+claim role, left the group, claim undecidable", nil, `{}`, false, []string{"viewer"}, ""},
		{"access token: group+claim role, still in the group", []string{"staff"}, `{}`, false, []string{"viewer"}, "viewer"},
		{"access token: group+claim role, left the group, claim not in the token", nil, `{"custom:level":"senior"}`, false, []string{"viewer"}, ""},
		// ID tokens decide every rule
		{"ID token: claim value gone removes its role", []string{"admins"}, `{"custom:tenant":"globex"}`, true, []string{"admin", "tenant-acme"}, "admin"},
		{"ID token: group+claim role kept by the claim", nil, `{"custom:level":"senior"}`, true, []string{"viewer"}, "viewer"},
		{"ID token: group+claim role granted by the claim", nil, `{"custom:level":"senior"}`, true, nil, "viewer"},
		{"ID token: group+claim role, neither", nil, `{"custom:level":"junior"}`, true, []string{"viewer"}, ""},
	} {
		got := strings.Join(m.Wanted(idWith(c.groups, c.claims), c.idClaims, c.have), ",")
		if got != c.want {
			t.Errorf("%s: Wanted = %q, want %q", c.what, got, c.want)
		}
	}
}

func TestNewRefusesBadRules(t *testing.T) {
	for _, c := range []struct {
		r    Rule
		want string
	}{
		{Rule{Group: "g"}, "no role"},
		{Rule{Group: "g", Roles: []string{"bad role"}}, "role"},
		{Rule{Roles: []string{"r"}}, "set group, or claim and value"},
		{Rule{Claim: "c", Roles: []string{"r"}}, "set group, or claim and value"},
		{Rule{Group: "g", Claim: "c", Value: "v", Roles: []string{"r"}}, "set group, or claim and value"},
		{Rule{Claim: "email", Value: "boss@example.com", Roles: []string{"admin"}}, "claim email is not a safe rule"},
	} {
		if _, err := New([]Rule{c.r}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%+v) = %v, want an error with %q", c.r, err, c.want)
		}
	}
}

// countingStore records the syncs that reach the store.
type countingStore struct{ calls [][]string }

func (c *countingStore) SyncProviderRoles(_ context.Context, _, _ string, want []string) (bool, error) {
	c.calls = append(c.calls, want)
	return true, nil
}

// TestSyncWritesOnlyOnDifference: an unchanged set never reaches the
// store, so mapped bearer requests cost no store access.
func TestSyncWritesOnlyOnDifference(t *testing.T) {
	m, _ := New(testRules)
	st := &countingStore{}
	s := NewSyncer(m, st)
	ctx := context.Background()
	u := &userstore.User{ID: "u_1", ProviderRoles: []string{"admin"}}
	if changed, _ := s.Sync(ctx, "main", u, idWith([]string{"admins"}, `{}`), false); changed || len(st.calls) != 0 {
		t.Fatalf("unchanged set: changed %v, store calls %v", changed, st.calls)
	}
	u.ProviderRoles = []string{}
	if changed, _ := s.Sync(ctx, "main", u, idWith(nil, `{}`), true); changed || len(st.calls) != 0 {
		t.Fatalf("empty = empty: changed %v, store calls %v", changed, st.calls)
	}
	if changed, _ := s.Sync(ctx, "main", u, idWith([]string{"editors"}, `{}`), true); !changed || len(st.calls) != 1 || strings.Join(st.calls[0], ",") != "editor,reviewer" {
		t.Fatalf("a group appeared: changed %v, store calls %v", changed, st.calls)
	}
	if _, err := s.SyncIDClaims(ctx, "main", u, json.RawMessage(`{"iss":"https://issuer.example","sub":"s","cognito:groups":["admins"],"custom:tenant":"acme"}`)); err != nil {
		t.Fatal(err)
	}
	if len(st.calls) != 2 || strings.Join(st.calls[1], ",") != "admin,tenant-acme" {
		t.Fatalf("ID claims: store calls %v", st.calls)
	}
}

// TestHoldsAgreesWithWanted: the allocation-free comparison of the hot
// path says "unchanged" exactly when Wanted returns the held set.
func TestHoldsAgreesWithWanted(t *testing.T) {
	m, _ := New(testRules)
	groups := [][]string{nil, {"admins"}, {"editors"}, {"admins", "editors", "ops"}, {"x"}, {"staff"}}
	claims := []string{`{}`, `{"custom:tenant":"acme"}`, `{"cognito:groups":["ops"]}`, `{"custom:level":"senior"}`}
	haves := [][]string{nil, {"admin"}, {"editor", "reviewer"}, {"admin", "tenant-acme"}, {"operator"}, {"tenant-acme"}, {"admin", "editor", "reviewer"}, {"stale"},
		{"viewer"}, {"tenant-acme", "viewer"}}
	for _, g := range groups {
		for _, c := range claims {
			for _, idClaims := range []bool{true, false} {
				for _, have := range haves {
					f := idWith(g, c)
					want := m.Wanted(f, idClaims, have)
					if got, same := m.holds(f, idClaims, have), strings.Join(want, ",") == strings.Join(have, ","); got != same {
						t.Errorf("groups %v claims %s idClaims %v have %v: holds %v, Wanted %v", g, c, idClaims, have, got, want)
					}
				}
			}
		}
	}
}

// applyingStore applies each sync to the user, as the store does, and
// counts the writes.
type applyingStore struct {
	u      *userstore.User
	writes int
}

func (a *applyingStore) SyncProviderRoles(_ context.Context, _, _ string, want []string) (bool, error) {
	a.writes++
	a.u.ProviderRoles = want
	return true, nil
}

// TestSyncAlternating: a user signed in through cognito_login (ID tokens
// at sign-in and refresh) who also calls with access tokens: a role only
// a claim rule grants is not taken away by the access tokens and given
// back by the next ID token (no store write, no audit row, no gap), and
// leaving a group takes its role away at the next access token.
func TestSyncAlternating(t *testing.T) {
	m, _ := New(testRules)
	u := &userstore.User{ID: "u_1", ProviderRoles: []string{}}
	st := &applyingStore{u: u}
	s := NewSyncer(m, st)
	ctx := context.Background()
	step := func(what string, f Facts, idClaims bool, want string, writes int) {
		t.Helper()
		if _, err := s.Sync(ctx, "main", u, f, idClaims); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(u.ProviderRoles, ","); got != want || st.writes != writes {
			t.Errorf("%s: roles %q after %d writes; want %q after %d", what, got, st.writes, want, writes)
		}
	}
	idToken := idWith([]string{"admins"}, `{"custom:tenant":"acme"}`)
	accessToken := idWith([]string{"admins"}, `{}`)
	step("sign-in", idToken, true, "admin,tenant-acme", 1)
	for range 3 {
		step("access token", accessToken, false, "admin,tenant-acme", 1)
		step("refresh", idToken, true, "admin,tenant-acme", 1)
	}
	step("left admins, access token", idWith(nil, `{}`), false, "tenant-acme", 2)
	step("tenant changed, ID token", idWith(nil, `{"custom:tenant":"globex"}`), true, "", 3)
}
