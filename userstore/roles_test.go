package userstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func joined(l []string) string { return strings.Join(l, ",") }

// TestSyncProviderRoles: provider roles appear and disappear with the
// wanted set, hand grants are never touched (a role held both ways keeps
// its hand grant when the provider's goes), every change is audited with
// source provider, and an unchanged set writes nothing.
func TestSyncProviderRoles(t *testing.T) {
	bothBackends(t, func(t *testing.T) {
		s := openTest(t, "")
		ctx := context.Background()
		u := mustUser(t, s, NewUser{Username: "alice", Roles: []string{"viewer"}})
		if err := s.GrantRoles(ctx, "admin", u.ID, "editor"); err != nil {
			t.Fatal(err)
		}
		sync := func(want ...string) bool {
			t.Helper()
			changed, err := s.SyncProviderRoles(ctx, "provider:main", u.ID, want)
			if err != nil {
				t.Fatal(err)
			}
			return changed
		}
		state := func() *User {
			t.Helper()
			got, err := s.GetUserByID(ctx, u.ID)
			if err != nil {
				t.Fatal(err)
			}
			return got
		}

		// the group appears: admin (new) and editor (also held by hand)
		if !sync("admin", "editor") {
			t.Fatal("first sync changed nothing")
		}
		got := state()
		if joined(got.Roles) != "admin,editor,viewer" || joined(got.LocalRoles) != "editor,viewer" || joined(got.ProviderRoles) != "admin,editor" {
			t.Fatalf("after the group appeared: roles %v local %v provider %v", got.Roles, got.LocalRoles, got.ProviderRoles)
		}

		// the same set again: no write at all (the store stamp stays)
		before, _ := s.Changes(ctx, 0)
		if sync("editor", "admin") {
			t.Fatal("an unchanged set reported a change")
		}
		if after, _ := s.Changes(ctx, 0); after != before {
			t.Fatal("an unchanged set wrote to the store")
		}

		// the group disappears: the provider's grants go, the hand grant of editor stays
		if !sync() {
			t.Fatal("emptying changed nothing")
		}
		got = state()
		if joined(got.Roles) != "editor,viewer" || joined(got.LocalRoles) != "editor,viewer" || len(got.ProviderRoles) != 0 {
			t.Fatalf("after the group disappeared: roles %v local %v provider %v", got.Roles, got.LocalRoles, got.ProviderRoles)
		}

		// audit: grant admin,editor and revoke admin,editor, both source provider
		es, _ := s.AuditFor(ctx, u.ID, 10)
		var provider []string
		for _, e := range es {
			var d struct {
				Roles  []string
				Source string
			}
			_ = json.Unmarshal([]byte(e.Detail), &d)
			if d.Source == SourceProvider {
				if e.Actor != "provider:main" {
					t.Errorf("audit actor %q", e.Actor)
				}
				provider = append(provider, e.Action+" "+joined(d.Roles))
			}
		}
		if joined(provider) != "role.revoke admin,editor,role.grant admin,editor" {
			t.Fatalf("provider audit rows (newest first) %v", provider)
		}

		// a role held only from the provider is not revoked by hand, and says why
		sync("ops")
		if err := s.RevokeRoles(ctx, "admin", u.ID, "ops"); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "provider") {
			t.Fatalf("revoking a provider-only role by hand: %v", err)
		}
		// one held both ways loses only its hand grant
		sync("ops", "editor")
		if err := s.RevokeRoles(ctx, "admin", u.ID, "editor"); err != nil {
			t.Fatal(err)
		}
		got = state()
		if joined(got.Roles) != "editor,ops,viewer" || joined(got.LocalRoles) != "viewer" || joined(got.ProviderRoles) != "editor,ops" {
			t.Fatalf("after revoking editor by hand: roles %v local %v provider %v", got.Roles, got.LocalRoles, got.ProviderRoles)
		}
		// a hand grant of a provider role adds the hand grant beside it
		if err := s.GrantRoles(ctx, "admin", u.ID, "ops"); err != nil {
			t.Fatal(err)
		}
		sync()
		if got = state(); joined(got.Roles) != "ops,viewer" || joined(got.LocalRoles) != "ops,viewer" {
			t.Fatalf("a hand grant made beside the provider's did not survive: %v / %v", got.Roles, got.LocalRoles)
		}
		if list, err := s.ListUsers(ctx, UserFilter{Role: "ops"}); err != nil || len(list) != 1 {
			t.Fatalf("ListUsers(role ops) = %v, %v", list, err)
		}
		if _, err := s.SyncProviderRoles(ctx, "p", u.ID, []string{"bad role"}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("bad role name: %v", err)
		}
		if _, err := s.SyncProviderRoles(ctx, "p", "u_missing", []string{"x"}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("missing user: %v", err)
		}
	})
}

// TestRoleSourceMigrationKeepsRoles: a store of schema 5 keeps its roles
// through the rebuild of user_roles, all as hand grants.
func TestRoleSourceMigrationKeepsRoles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.db")
	raw, err := sql.Open(sqliteDriverName, path)
	if err != nil {
		t.Fatal(err)
	}
	const before = 5
	for _, m := range migrations[:before] {
		for _, stmt := range m.stmts {
			if _, err := raw.Exec(strings.ReplaceAll(stmt, "{{AUTOID}}", sqliteDialect.autoID)); err != nil {
				t.Fatal(err)
			}
		}
	}
	id := "u_00000000000000000000000000000001"
	insertRawUser(t, raw, id, "alice", "alice", "", nil)
	for _, r := range []string{"admin", "viewer"} {
		if _, err := raw.Exec(`INSERT INTO user_roles (user_id, role, created_at) VALUES (?, ?, '2025-01-01T00:00:00.000000Z')`, id, r); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := raw.Exec(`PRAGMA user_version = 5`); err != nil {
		t.Fatal(err)
	}
	closeOK(t, raw)

	s := openTest(t, path)
	u, err := s.GetUserByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if joined(u.Roles) != "admin,viewer" || joined(u.LocalRoles) != "admin,viewer" || len(u.ProviderRoles) != 0 {
		t.Fatalf("after the migration: roles %v local %v provider %v", u.Roles, u.LocalRoles, u.ProviderRoles)
	}
}

// TestSyncProviderRolesConcurrent: requests racing to record the same
// group change write it once: one grant, one audit row.
func TestSyncProviderRolesConcurrent(t *testing.T) {
	bothBackends(t, func(t *testing.T) {
		s := openTest(t, "")
		ctx := context.Background()
		u := mustUser(t, s, NewUser{Username: "alice"})
		const n = 8
		errs := make(chan error, n)
		changed := make(chan bool, n)
		for i := 0; i < n; i++ {
			go func() {
				c, err := s.SyncProviderRoles(ctx, "provider:main", u.ID, []string{"admin", "editor"})
				changed <- c
				errs <- err
			}()
		}
		writes := 0
		for i := 0; i < n; i++ {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
			if <-changed {
				writes++
			}
		}
		es, _ := s.AuditFor(ctx, u.ID, 20)
		grants := 0
		for _, e := range es {
			if e.Action == ActionRoleGrant {
				grants++
			}
		}
		if writes != 1 || grants != 1 {
			t.Fatalf("%d syncs reported a change and %d grant rows were written; want 1 and 1", writes, grants)
		}
	})
}
