package caddycognito

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-cognito/caddy-cognito/internal/identity"
	"github.com/caddy-cognito/caddy-cognito/internal/roles"
	"github.com/caddy-cognito/caddy-cognito/userstore"
)

// A store that cannot answer must never look like "no such user": the
// request gets 503, and nothing reaches the upstream.
func TestMappedStoreUnavailableIs503(t *testing.T) {
	// Every request looks at the store (a cached answer younger than
	// changeCheckAge would otherwise be served from memory).
	defer func(old time.Duration) { changeCheckAge = old }(changeCheckAge)
	changeCheckAge = 0
	ti := newTestIssuer(t)
	store, err := userstore.Open(context.Background(), userstore.Options{Path: filepath.Join(t.TempDir(), "s.db")})
	if err != nil {
		t.Fatal(err)
	}
	h := &Bearer{
		Realm: "cognito", UnmappedMessage: "no account", verifier: ti.Verifier(t, "access"),
		headers: identity.NewHeaders(DefaultHeaderPrefix), logger: zap.NewNop(),
		mapper: newUserMapper(store, ti.URL, nil),
	}
	serve := func() *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set("Authorization", "Bearer "+ti.Sign(ti.AccessClaims(nil)))
		req = req.WithContext(context.WithValue(req.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
		w := httptest.NewRecorder()
		if err := h.ServeHTTP(w, req, okHandler); err != nil {
			t.Fatal(err)
		}
		return w
	}
	if w := serve(); w.Code != 403 {
		t.Fatalf("unknown user with a working store: %d; want 403", w.Code)
	}
	if err := store.Close(); err != nil { // as good as a vanished disk
		t.Fatal(err)
	}
	w := serve()
	var body map[string]string
	_ = json.Unmarshal(w.Body.Bytes(), &body)
	if w.Code != 503 || body["error"] != "temporarily_unavailable" {
		t.Fatalf("store unavailable: %d %q; want 503 temporarily_unavailable", w.Code, w.Body.String())
	}
}

// TestMappedProviderRoles: on `users mapped` tokens the roles block adds a
// role when the group appears and removes it when it disappears, keeps a
// hand grant of the same role, and writes nothing while the token's
// groups agree with the store (the change stamp stays).
func TestMappedProviderRoles(t *testing.T) {
	ctx := context.Background()
	store, err := userstore.Open(ctx, userstore.Options{Path: filepath.Join(t.TempDir(), "s.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	u, err := store.CreateUser(ctx, "test", userstore.NewUser{Username: "alice", Roles: []string{"viewer"}})
	if err != nil {
		t.Fatal(err)
	}
	const issuer = "https://issuer.example"
	if err := store.LinkIdentity(ctx, "test", u.ID, issuer, "sub-1", ""); err != nil {
		t.Fatal(err)
	}
	mp, err := roles.New([]roles.Rule{{Group: "admins", Roles: []string{"admin", "viewer"}}})
	if err != nil {
		t.Fatal(err)
	}
	m := newUserMapper(store, issuer, roles.NewSyncer(mp, store))
	lookup := func(groups ...string) *userstore.User {
		t.Helper()
		got, err := m.lookup(ctx, &Identity{Pool: "main", Subject: "sub-1", Username: "alice", TokenUse: "access", ClientID: "c", Groups: groups})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := lookup("admins"); strings.Join(got.Roles, ",") != "admin,viewer" || strings.Join(got.ProviderRoles, ",") != "admin,viewer" {
		t.Fatalf("group appeared: roles %v provider %v", got.Roles, got.ProviderRoles)
	}
	before, _ := store.Changes(ctx, 0)
	for i := 0; i < 3; i++ {
		lookup("admins")
	}
	if after, _ := store.Changes(ctx, 0); after != before {
		t.Fatal("unchanged groups wrote to the store")
	}
	if got := lookup(); strings.Join(got.Roles, ",") != "viewer" || len(got.ProviderRoles) != 0 || strings.Join(got.LocalRoles, ",") != "viewer" {
		t.Fatalf("group disappeared: roles %v provider %v local %v; want the hand-granted viewer kept", got.Roles, got.ProviderRoles, got.LocalRoles)
	}
}
