package userstore

import (
	"context"
	"errors"
	"sync"
	"testing"
)

const iss = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_T"

func TestAdmitIdentity(t *testing.T) {
	bothBackends(t, func(t *testing.T) {
		ctx := context.Background()
		s := openTest(t, "")
		alice := mustUser(t, s, NewUser{Username: "alice", Email: "Alice@Example.com"})
		off := mustUser(t, s, NewUser{Username: "off", Email: "off@example.com", Disabled: true})

		for _, c := range []struct {
			name     string
			a        Admission
			wantUser string // username; "" when refused
			wantErr  error
		}{
			{"by username, any case", Admission{Sub: "s1", MatchUsername: "ALICE"}, "alice", nil},
			{"by email, any case", Admission{Sub: "s2", MatchEmail: "alice@EXAMPLE.com", Provider: "Google"}, "alice", nil},
			{"no match, nothing to create", Admission{Sub: "s3", MatchEmail: "nobody@example.com"}, "", ErrNotFound},
			{"no match, create", Admission{Sub: "s4", MatchEmail: "new@example.com", Create: &NewUser{Username: "new", Email: "new@example.com"}}, "new", nil},
			{"create clashes with an existing username", Admission{Sub: "s5", Create: &NewUser{Username: "Alice"}}, "", ErrConflict},
			{"create clashes with an existing email", Admission{Sub: "s6", Create: &NewUser{Username: "other", Email: "ALICE@example.com"}}, "", ErrConflict},
			{"disabled match", Admission{Sub: "s7", MatchUsername: "off"}, "", ErrDisabled},
			{"invalid username to create", Admission{Sub: "s8", Create: &NewUser{Username: "bad\nname"}}, "", ErrInvalid},
			{"already linked: its user, whatever the match", Admission{Sub: "s1", MatchUsername: "new"}, "alice", nil},
		} {
			t.Run(c.name, func(t *testing.T) {
				c.a.Issuer = iss
				u, err := s.AdmitIdentity(ctx, "login:test", c.a)
				if c.wantErr != nil {
					if !errors.Is(err, c.wantErr) {
						t.Fatalf("err = %v, want %v", err, c.wantErr)
					}
					if _, err := s.LookupIdentity(ctx, iss, c.a.Sub); !errors.Is(err, ErrNotFound) {
						t.Errorf("a refused admission left a link: %v", err)
					}
					return
				}
				if err != nil || u.Username != c.wantUser {
					t.Fatalf("got %v, %v; want user %s", u, err, c.wantUser)
				}
				if got, err := s.LookupIdentity(ctx, iss, c.a.Sub); err != nil || got.ID != u.ID {
					t.Errorf("lookup after admission: %v, %v", got, err)
				}
			})
		}
		ids, err := s.ListIdentities(ctx, alice.ID)
		if err != nil || len(ids) != 2 || ids[1].Provider != "Google" {
			t.Errorf("alice's identities %+v (%v)", ids, err)
		}
		if got := auditActions(t, s, alice.ID); countOf(got, ActionIdentityLink) != 2 {
			t.Errorf("audit for alice %v: want two identity.link rows", got)
		}
		if got := auditActions(t, s, off.ID); countOf(got, ActionIdentityLink) != 0 {
			t.Errorf("a disabled user was linked: %v", got)
		}
	})
}

func countOf(list []string, v string) int {
	n := 0
	for _, s := range list {
		if s == v {
			n++
		}
	}
	return n
}

// TestAdmitIdentityRace: many first sign-ins of one identity at once (a
// double click, several tabs, two instances on one database) end with one
// user and one link.
func TestAdmitIdentityRace(t *testing.T) {
	bothBackends(t, func(t *testing.T) {
		ctx := context.Background()
		loc := newLocation(t)
		stores := []*Store{openTest(t, loc), openTest(t, loc)} // two instances
		s := stores[0]
		const n = 40
		var wg sync.WaitGroup
		ids := make(chan string, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				u, err := stores[i%2].AdmitIdentity(ctx, "login:any", Admission{Issuer: iss, Sub: "same", Create: &NewUser{Username: "carol"}})
				if err != nil {
					t.Error(err)
					return
				}
				ids <- u.ID
			}()
		}
		wg.Wait()
		close(ids)
		first := ""
		for id := range ids {
			if first == "" {
				first = id
			} else if id != first {
				t.Fatalf("two users for one identity: %s and %s", first, id)
			}
		}
		users, err := s.ListUsers(ctx, UserFilter{})
		if err != nil || len(users) != 1 {
			t.Errorf("users after the race: %d (%v), want 1", len(users), err)
		}
		if ids, err := s.ListIdentities(ctx, users[0].ID); err != nil || len(ids) != 1 {
			t.Errorf("identities after the race: %d (%v), want 1", len(ids), err)
		}
	})
}

// TestAdmitOnlyUnlinked: an OnlyUnlinked match (sso_migration) claims a
// local user once. A second identity naming the same user is refused,
// nothing is linked, and the attempt is audited on the user.
func TestAdmitOnlyUnlinked(t *testing.T) {
	bothBackends(t, func(t *testing.T) {
		ctx := context.Background()
		s := openTest(t, "")
		boss := mustUser(t, s, NewUser{Username: "boss"})
		if _, err := s.AdmitIdentity(ctx, "login:sso_migration", Admission{Issuer: iss, Sub: "first", MatchUsername: "boss", OnlyUnlinked: true}); err != nil {
			t.Fatalf("first identity: %v", err)
		}
		_, err := s.AdmitIdentity(ctx, "login:sso_migration", Admission{Issuer: iss, Sub: "second", MatchUsername: "BOSS", OnlyUnlinked: true})
		if !errors.Is(err, ErrConflict) {
			t.Fatalf("second identity for a linked user: %v, want ErrConflict", err)
		}
		if _, err := s.LookupIdentity(ctx, iss, "second"); !errors.Is(err, ErrNotFound) {
			t.Errorf("the refused identity is linked: %v", err)
		}
		if got, err := s.LookupIdentity(ctx, iss, "first"); err != nil || got.ID != boss.ID {
			t.Errorf("the first identity: %v, %v", got, err)
		}
		if got := auditActions(t, s, boss.ID); countOf(got, ActionIdentityLinkRefused) != 1 || countOf(got, ActionIdentityLink) != 1 {
			t.Errorf("audit for boss %v: want one identity.link and one identity.link_refused", got)
		}
		// Without OnlyUnlinked (trusted_provider by email) a second identity
		// may still be linked, by design.
		if _, err := s.AdmitIdentity(ctx, "login:trusted_provider", Admission{Issuer: iss, Sub: "third", MatchUsername: "boss"}); err != nil {
			t.Errorf("a plain match of a linked user: %v", err)
		}
	})
}
