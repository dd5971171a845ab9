package admission

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/caddy-cognito/caddy-cognito/internal/identity"
	"github.com/caddy-cognito/caddy-cognito/userstore"
)

// TestAdmit: a linked identity signs in (its profile refreshed), rules
// are tried in order, and what no rule admits is a *Refusal carrying the
// configured message, while a failing store is not a refusal.
func TestAdmit(t *testing.T) {
	ctx := context.Background()
	store, err := userstore.Open(ctx, userstore.Options{Path: filepath.Join(t.TempDir(), "a.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = store.Close() }() // closed (and checked) below; this one only covers an early failure
	boss, err := store.CreateUser(ctx, "test", userstore.NewUser{Username: "boss"})
	if err != nil {
		t.Fatal(err)
	}
	a, err := New([]Rule{{Rule: "sso_migration"}, {Rule: "email_domain", Domains: []string{"corp.example"}}},
		Config{Store: store, RefusedMessage: "Ask for an invitation."})
	if err != nil {
		t.Fatal(err)
	}
	claims := func(sub, js string) *identity.IDClaims { return claimsOf(t, `{"iss":"i","sub":"`+sub+`",`+js+`}`) }

	u, err := a.Admit(ctx, claims("1", `"cognito:username":"boss","custom:from_sso":"1","given_name":"Bo"`), "")
	if err != nil || u.ID != boss.ID || u.GivenName != "Bo" {
		t.Fatalf("sso_migration: %+v, %v", u, err)
	}
	// The same user claimed again by another identity: refused.
	var ref *Refusal
	if _, err := a.Admit(ctx, claims("2", `"cognito:username":"boss","custom:from_sso":"1"`), ""); !errors.As(err, &ref) || ref.Message != "Ask for an invitation." {
		t.Errorf("second sso_migration identity: %v, want a refusal", err)
	}
	if u, err := a.Admit(ctx, claims("3", `"cognito:username":"dana","email":"dana@corp.example","email_verified":true`), ""); err != nil || u.Email != "dana@corp.example" {
		t.Errorf("email_domain: %+v, %v", u, err)
	}
	if _, err := a.Admit(ctx, claims("4", `"cognito:username":"eve","email":"eve@else.example","email_verified":true`), ""); !errors.As(err, &ref) {
		t.Errorf("no rule fits: %v, want a refusal", err)
	}
	// Known identities sign in again whatever the rules.
	if u, err := a.Admit(ctx, claims("1", `"cognito:username":"boss"`), ""); err != nil || u.ID != boss.ID {
		t.Errorf("linked identity: %+v, %v", u, err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Admit(ctx, claims("5", `"cognito:username":"x"`), ""); err == nil || errors.As(err, &ref) {
		t.Errorf("closed store: %v, want a store error, not a refusal", err)
	}
	if _, err := New([]Rule{{Rule: "invited"}}, Config{Store: store}); err == nil {
		t.Error("admit invited without invitations accepted")
	}
}
