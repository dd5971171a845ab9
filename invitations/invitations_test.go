package invitations

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-cognito/caddy-cognito/userstore"
)

const iss = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_T"

// clock is a settable test clock.
type clock struct{ t atomic.Int64 }

func (c *clock) now() time.Time          { return time.Unix(0, c.t.Load()) }
func (c *clock) advance(d time.Duration) { c.t.Add(int64(d)) }

func newTestService(t *testing.T) (*Service, *userstore.Store, *clock) {
	t.Helper()
	c := &clock{}
	c.t.Store(time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC).UnixNano())
	store, err := userstore.Open(context.Background(), userstore.Options{Path: filepath.Join(t.TempDir(), "inv.db"), Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := store.Close(); err != nil {
			t.Error(err)
		}
	})
	return New(store, c.now), store, c
}

func ident(sub, email string, verified bool) Identity {
	return Identity{Issuer: iss, Sub: sub, Username: "user-" + sub, Email: email, EmailVerified: verified}
}

func TestCreateValidatesAndHidesTheSecret(t *testing.T) {
	ctx := context.Background()
	svc, store, c := newTestService(t)
	for _, bad := range []CreateRequest{
		{Email: ""}, {Email: "not-an-address"}, {Email: "a@b.example", Roles: []string{"bad role"}},
		{Email: "a@b.example", TTL: time.Second}, {Email: "a@b.example", TTL: 2 * MaxTTL},
		{Email: "a@b.example", UserID: "u_missing"},
	} {
		if _, _, err := svc.Create(ctx, "admin", bad); err == nil {
			t.Errorf("Create(%+v) accepted", bad)
		}
	}
	inv, secret, err := svc.Create(ctx, "admin", CreateRequest{Email: "Ann@Example.com", Roles: []string{"editor", "editor", "viewer"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(secret) != 43 || HashSecret(secret) == "" || inv.Status != Pending ||
		!inv.ExpiresAt.Equal(c.now().Add(DefaultTTL)) || fmt.Sprint(inv.Roles) != "[editor viewer]" {
		t.Errorf("created %+v, secret of %d characters", inv, len(secret))
	}
	// 256 bits from crypto/rand: two secrets never repeat.
	_, secret2, _ := svc.Create(ctx, "admin", CreateRequest{Email: "b@example.com"})
	if secret2 == secret {
		t.Error("two invitations got the same secret")
	}
	// Only the hash is stored.
	rows, err := store.Read(ctx, `SELECT secret_hash FROM invitations`)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rows.Close() }() // rows.Err, checked below, reports what went wrong
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(h, secret) || h == secret {
			t.Error("the secret is stored as is")
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	got, err := svc.Lookup(ctx, secret)
	if err != nil || got.ID != inv.ID || got.Email != "Ann@Example.com" {
		t.Errorf("Lookup: %+v, %v", got, err)
	}
	for _, bad := range []string{"", "x", secret[:42], secret + "A", strings.Repeat("A", 43), secret[:42] + "!"} {
		if _, err := svc.Lookup(ctx, bad); !errors.Is(err, ErrUnknown) {
			t.Errorf("Lookup(%q) = %v, want ErrUnknown", bad, err)
		}
	}
}

func TestAcceptCreatesUserWithRoles(t *testing.T) {
	ctx := context.Background()
	svc, store, _ := newTestService(t)
	inv, secret, _ := svc.Create(ctx, "admin", CreateRequest{Email: "ann@example.com", Roles: []string{"editor"}})
	u, got, err := svc.Accept(ctx, secret, ident("s-ann", "ann@example.com", true), AcceptOptions{BindEmail: true})
	if err != nil {
		t.Fatal(err)
	}
	if u.Username != "user-s-ann" || u.Email != "ann@example.com" || fmt.Sprint(u.Roles) != "[editor]" ||
		got.Status != Accepted || got.AcceptedBy != u.ID {
		t.Errorf("accepted: user %+v, invitation %+v", u, got)
	}
	if linked, err := store.LookupIdentity(ctx, iss, "s-ann"); err != nil || linked.ID != u.ID {
		t.Errorf("identity not linked: %v %v", linked, err)
	}
	// A second use is refused, by the same identity or another.
	if _, _, err := svc.Accept(ctx, secret, ident("s-ann", "ann@example.com", true), AcceptOptions{}); !errors.Is(err, ErrUsed) {
		t.Errorf("second use: %v, want ErrUsed", err)
	}
	if _, _, err := svc.Accept(ctx, secret, ident("s-eve", "eve@example.com", true), AcceptOptions{}); !errors.Is(err, ErrUsed) {
		t.Errorf("second use by another: %v, want ErrUsed", err)
	}
	stored, _ := svc.Get(ctx, inv.ID)
	if stored.Status != Accepted || stored.AcceptedBy != u.ID {
		t.Errorf("stored %+v", stored)
	}
}

func TestAcceptRules(t *testing.T) {
	ctx := context.Background()
	svc, store, c := newTestService(t)
	bob, _ := store.CreateUser(ctx, "admin", userstore.NewUser{Username: "bob", Email: "bob@example.com"})
	carol, _ := store.CreateUser(ctx, "admin", userstore.NewUser{Username: "carol"})
	if err := store.LinkIdentity(ctx, "admin", carol.ID, iss, "s-carol", ""); err != nil {
		t.Fatal(err)
	}
	mk := func(req CreateRequest) string {
		t.Helper()
		_, s, err := svc.Create(ctx, "admin", req)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	// bind_email: unverified or different email refused; case does not matter.
	s1 := mk(CreateRequest{Email: "Dan@Example.com"})
	for _, id := range []Identity{ident("s-dan", "dan@example.com", false), ident("s-dan", "other@example.com", true)} {
		if _, _, err := svc.Accept(ctx, s1, id, AcceptOptions{BindEmail: true}); !errors.Is(err, ErrEmailMismatch) {
			t.Errorf("bind_email with %+v: %v, want ErrEmailMismatch", id, err)
		}
	}
	if _, _, err := svc.Accept(ctx, s1, ident("s-dan", "DAN@example.COM", true), AcceptOptions{BindEmail: true}); err != nil {
		t.Errorf("bind_email, same address in another case: %v", err)
	}
	// Without bind_email another address may accept.
	s2 := mk(CreateRequest{Email: "erin@example.com"})
	if u, _, err := svc.Accept(ctx, s2, ident("s-erin", "erin.personal@example.net", true), AcceptOptions{}); err != nil || u.Email != "erin.personal@example.net" {
		t.Errorf("without bind_email: %v, %v", u, err)
	}

	// For an existing user: links that user, and only that user.
	s3 := mk(CreateRequest{Email: "bob@example.com", UserID: bob.ID, Roles: []string{"admin"}})
	if _, _, err := svc.Accept(ctx, s3, ident("s-carol", "bob@example.com", true), AcceptOptions{}); !errors.Is(err, ErrLinkedElsewhere) {
		t.Errorf("identity of another user: %v, want ErrLinkedElsewhere", err)
	}
	u, _, err := svc.Accept(ctx, s3, ident("s-bob", "bob@example.com", true), AcceptOptions{})
	if err != nil || u.ID != bob.ID || fmt.Sprint(u.Roles) != "[admin]" {
		t.Errorf("invitation for bob: %+v, %v", u, err)
	}
	// An identity already linked to the invited user just gets the roles.
	s4 := mk(CreateRequest{Email: "bob@example.com", UserID: bob.ID, Roles: []string{"auditor"}})
	if u, _, err := svc.Accept(ctx, s4, ident("s-bob", "bob@example.com", true), AcceptOptions{}); err != nil || fmt.Sprint(u.Roles) != "[admin auditor]" {
		t.Errorf("roles for a linked identity: %+v, %v", u, err)
	}
	// An invitation for nobody in particular, accepted by a linked identity: refused.
	s5 := mk(CreateRequest{Email: "carol@example.com"})
	if _, _, err := svc.Accept(ctx, s5, ident("s-carol", "carol@example.com", true), AcceptOptions{}); !errors.Is(err, ErrLinkedElsewhere) {
		t.Errorf("linked identity, open invitation: %v, want ErrLinkedElsewhere", err)
	}
	// The user to create clashes with an existing one: a conflict, nothing changes.
	s6 := mk(CreateRequest{Email: "x@example.com"})
	clash := ident("s-x", "x@example.com", true)
	clash.Username = "BOB"
	if _, _, err := svc.Accept(ctx, s6, clash, AcceptOptions{}); !errors.Is(err, userstore.ErrConflict) {
		t.Errorf("username clash: %v, want ErrConflict", err)
	}
	if inv, _ := svc.Lookup(ctx, s6); inv.Status != Pending {
		t.Errorf("a refused acceptance changed the invitation: %s", inv.Status)
	}

	// Revoked, expired, and a disabled invited user.
	s7 := mk(CreateRequest{Email: "r@example.com"})
	inv7, _ := svc.Lookup(ctx, s7)
	if err := svc.Revoke(ctx, "admin", inv7.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.Accept(ctx, s7, ident("s-r", "r@example.com", true), AcceptOptions{}); !errors.Is(err, ErrRevoked) {
		t.Errorf("revoked: %v", err)
	}
	if err := svc.Revoke(ctx, "admin", inv7.ID); !errors.Is(err, userstore.ErrConflict) {
		t.Errorf("revoking twice: %v, want ErrConflict", err)
	}
	s8 := mk(CreateRequest{Email: "f@example.com", UserID: carol.ID})
	if err := store.SetActive(ctx, "admin", carol.ID, false); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.Accept(ctx, s8, ident("s-f", "f@example.com", true), AcceptOptions{}); !errors.Is(err, ErrFailed) {
		t.Errorf("disabled invited user: %v, want ErrFailed", err)
	}
	if inv, _ := svc.Lookup(ctx, s8); inv.Status != Failed || inv.StatusNote == "" {
		t.Errorf("after a failed acceptance: %+v", inv)
	}
	s9 := mk(CreateRequest{Email: "late@example.com", TTL: time.Hour})
	c.advance(time.Hour)
	if _, _, err := svc.Accept(ctx, s9, ident("s-late", "late@example.com", true), AcceptOptions{}); !errors.Is(err, ErrExpired) {
		t.Errorf("expired: %v, want ErrExpired", err)
	}
	if _, _, err := svc.Accept(ctx, "unknown-secret", ident("s-u", "", false), AcceptOptions{}); !errors.Is(err, ErrUnknown) {
		t.Errorf("unknown: %v", err)
	}
}

// TestAcceptRace: 50 concurrent acceptances of one invitation by 50
// different identities: exactly one wins, every other gets ErrUsed.
func TestAcceptRace(t *testing.T) {
	ctx := context.Background()
	svc, store, _ := newTestService(t)
	_, secret, _ := svc.Create(ctx, "admin", CreateRequest{Email: "race@example.com", Roles: []string{"member"}})
	const n = 50
	var wg sync.WaitGroup
	var won, used atomic.Int64
	errs := make(chan error, n)
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			_, _, err := svc.Accept(ctx, secret, ident(fmt.Sprintf("s-%d", i), "race@example.com", true), AcceptOptions{})
			switch {
			case err == nil:
				won.Add(1)
			case errors.Is(err, ErrUsed):
				used.Add(1)
			default:
				errs <- err
			}
		}(i)
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("neither a win nor a clear refusal: %v", err)
	}
	if won.Load() != 1 || used.Load() != n-1 {
		t.Errorf("%d won, %d refused as used; want 1 and %d", won.Load(), used.Load(), n-1)
	}
	users, _ := store.ListUsers(ctx, userstore.UserFilter{})
	if len(users) != 1 {
		t.Errorf("%d users after the race, want 1", len(users))
	}
}

func TestResendRotatesTheSecret(t *testing.T) {
	ctx := context.Background()
	svc, _, _ := newTestService(t)
	inv, old, _ := svc.Create(ctx, "admin", CreateRequest{Email: "g@example.com"})
	_, fresh, err := svc.Resend(ctx, "admin", inv.ID)
	if err != nil || fresh == old {
		t.Fatalf("resend: %v", err)
	}
	if _, err := svc.Lookup(ctx, old); !errors.Is(err, ErrUnknown) {
		t.Errorf("the old link still works: %v", err)
	}
	if got, err := svc.Lookup(ctx, fresh); err != nil || got.ID != inv.ID {
		t.Errorf("the new link: %v", err)
	}
	if err := svc.MarkSent(ctx, inv.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	if got, _ := svc.Get(ctx, inv.ID); got.LastSentAt == nil {
		t.Error("last_sent_at not recorded")
	}
}

func TestSweepAndClean(t *testing.T) {
	ctx := context.Background()
	svc, _, c := newTestService(t)
	short, _, _ := svc.Create(ctx, "admin", CreateRequest{Email: "s@example.com", TTL: time.Hour})
	long, _, _ := svc.Create(ctx, "admin", CreateRequest{Email: "l@example.com"})
	revoked, _, _ := svc.Create(ctx, "admin", CreateRequest{Email: "r@example.com"})
	if err := svc.Revoke(ctx, "admin", revoked.ID); err != nil {
		t.Fatal(err)
	}
	c.advance(2 * time.Hour)
	if pend, _ := svc.List(ctx, Filter{Status: Pending}); len(pend) != 1 || pend[0].ID != long.ID {
		t.Errorf("pending before the sweep: %+v", pend)
	}
	if n, err := svc.ExpireDue(ctx); err != nil || n != 1 {
		t.Errorf("ExpireDue: %d, %v; want 1", n, err)
	}
	if got, _ := svc.Get(ctx, short.ID); got.Status != Expired {
		t.Errorf("swept: %s", got.Status)
	}
	// Clean removes the expired one now, the revoked one only once old.
	if n, err := svc.Clean(ctx, 30*24*time.Hour); err != nil || n != 1 {
		t.Errorf("Clean: %d, %v; want 1", n, err)
	}
	c.advance(31 * 24 * time.Hour) // long has expired too by now
	if n, err := svc.Clean(ctx, 30*24*time.Hour); err != nil || n != 2 {
		t.Errorf("Clean later: %d, %v; want 2", n, err)
	}
	if all, _ := svc.List(ctx, Filter{}); len(all) != 0 {
		t.Errorf("left after cleaning: %+v", all)
	}
}
