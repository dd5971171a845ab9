package invitations

import (
	"context"
	"errors"
	"testing"

	"github.com/caddy-cognito/caddy-cognito/userstore"
)

// TestBindEmailFoldsASCIIOnly: with bind_email the identity's verified
// email must be the invited address: ASCII case aside, character for
// character (strings.EqualFold would let "\u212Aate" stand for "kate" and
// "\u017Fam" for "sam").
func TestBindEmailFoldsASCIIOnly(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name           string
		invited, email string
		ok             bool
	}{
		{"same address", "kate@example.com", "kate@example.com", true},
		{"ASCII case", "Kate@Example.com", "KATE@example.COM", true},
		{"ASCII space around the claim", "kate@example.com", " kate@example.com ", true},
		{"Kelvin sign", "kate@example.com", "\u212Aate@example.com", false},
		{"Kelvin sign, invited in capitals", "KATE@example.com", "\u212Aate@example.com", false},
		{"long s", "sam@example.com", "\u017Fam@example.com", false},
		{"sharp s", "strasse@example.com", "stra\u00DFe@example.com", false},
		{"dotted capital I", "info@example.com", "\u0130nfo@example.com", false},
		{"Cyrillic a", "alice@example.com", "\u0430lice@example.com", false},
		{"Cyrillic e in the domain", "eve@example.com", "eve@\u0435xample.com", false},
		{"non-ASCII case", "\u00E5sa@example.com", "\u00C5sa@example.com", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			svc, _, _ := newTestService(t)
			_, secret, err := svc.Create(ctx, "admin", CreateRequest{Email: c.invited})
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = svc.Accept(ctx, secret, ident("s-1", c.email, true), AcceptOptions{BindEmail: true})
			if c.ok && err != nil {
				t.Fatalf("%q invited, %q accepting: %v", c.invited, c.email, err)
			}
			if !c.ok && !errors.Is(err, ErrEmailMismatch) {
				t.Fatalf("%q invited, %q accepting: %v, want ErrEmailMismatch", c.invited, c.email, err)
			}
		})
	}
}

// TestListByEmailFoldsASCIIOnly: the email filter uses the same rule.
func TestListByEmailFoldsASCIIOnly(t *testing.T) {
	ctx := context.Background()
	svc, _, _ := newTestService(t)
	if _, _, err := svc.Create(ctx, "admin", CreateRequest{Email: "Kim@Example.com"}); err != nil {
		t.Fatal(err)
	}
	for email, want := range map[string]int{
		"kim@example.com": 1, " KIM@EXAMPLE.COM": 1,
		"\u212Aim@example.com": 0, "k\u0131m@example.com": 0,
	} {
		if list, err := svc.List(ctx, Filter{Email: email}); err != nil || len(list) != want {
			t.Errorf("List(email %q) = %d invitations, %v; want %d", email, len(list), err, want)
		}
	}
}

// TestAcceptRefusesAShadowingUsername: an invitation for nobody in
// particular creates a user named as Cognito names the identity; a name
// that is another user's email would capture references meant for that
// user, so it is a conflict and nothing changes.
func TestAcceptRefusesAShadowingUsername(t *testing.T) {
	ctx := context.Background()
	svc, store, _ := newTestService(t)
	boss, err := store.CreateUser(ctx, "admin", userstore.NewUser{Username: "boss", Email: "boss@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	for username, want := range map[string]error{"Boss@Example.com": userstore.ErrConflict, boss.ID: userstore.ErrInvalid} {
		_, secret, err := svc.Create(ctx, "admin", CreateRequest{Email: "mallory@example.net"})
		if err != nil {
			t.Fatal(err)
		}
		id := ident("s-mallory", "mallory@example.net", true)
		id.Username = username
		_, _, err = svc.Accept(ctx, secret, id, AcceptOptions{})
		if !errors.Is(err, want) {
			t.Fatalf("username %q: %v, want %v", username, err, want)
		}
		if inv, _ := svc.Lookup(ctx, secret); inv.Status != Pending {
			t.Errorf("a refused acceptance changed the invitation: %s", inv.Status)
		}
		if _, err := store.LookupIdentity(ctx, iss, "s-mallory"); !errors.Is(err, userstore.ErrNotFound) {
			t.Errorf("a refused acceptance linked the identity: %v", err)
		}
	}
	if u, err := store.GetUser(ctx, "boss@example.com"); err != nil || u.ID != boss.ID {
		t.Fatalf("GetUser(boss@example.com) = %v, %v; want boss", u, err)
	}
}
