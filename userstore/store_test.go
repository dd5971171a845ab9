// Tests run against both SQLite drivers; the build tag picks one, so run the
// suite twice:
//
//	go vet ./userstore/ && go test -race -count=1 ./userstore/   # cgo: mattn/go-sqlite3
//	CGO_ENABLED=0 go test -count=1 ./userstore/                  # pure Go: modernc.org/sqlite
//
// Every test that is about the store's behaviour runs twice more, as the
// subtests "sqlite" and "postgres" of bothBackends: the second against a
// real PostgreSQL (internal/pgtest, a fresh database per test; skipped
// with a message when PostgreSQL is not installed, failed under CI=true).
// Tests of SQLite's files, pragmas, drivers, locks and raw old schemas
// (store_test.go's pragma and file-mode tests, failure_test.go's disk and
// permission tests, the migration-from-raw-schema tests, the child-process
// tests of concurrency_test.go, TestChangesStamp) stay SQLite-only: their
// PostgreSQL counterparts are in postgres_test.go.
//
// No test synchronises with sleeps: goroutines use channels, child processes
// are followed through the lines they print.
package userstore

import (
	"context"
	"encoding/json"
	"errors"
	"github.com/caddy-cognito/caddy-cognito/internal/pgtest"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// bothBackends runs body as the subtests "sqlite" and "postgres".
func bothBackends(t *testing.T, body func(t *testing.T)) {
	t.Helper()
	t.Run("sqlite", body)
	t.Run("postgres", body)
}

// onPostgres says whether t runs under bothBackends' "postgres" subtest.
func onPostgres(t testing.TB) bool { return strings.Contains(t.Name(), "/postgres") }

// newLocation returns where a fresh store lives for t's backend: a file
// path (SQLite) or a new database's DSN (PostgreSQL).
func newLocation(t testing.TB) string {
	t.Helper()
	if onPostgres(t) {
		return pgtest.Shared(t).NewDatabase(t)
	}
	return filepath.Join(t.TempDir(), "users.db")
}

// optionsFor opens loc, a path or a DSN as newLocation returns.
func optionsFor(loc string) Options {
	if strings.HasPrefix(loc, "postgres://") {
		return Options{Driver: "postgres", DSN: loc}
	}
	return Options{Path: loc}
}

func openTest(t *testing.T, path string, mod ...func(*Options)) *Store {
	t.Helper()
	if path == "" {
		path = newLocation(t)
	}
	o := optionsFor(path)
	for _, m := range mod {
		m(&o)
	}
	s, err := Open(context.Background(), o)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { closeOK(t, s) })
	return s
}

// closeOK closes c and fails the test if that fails.
func closeOK(t testing.TB, c io.Closer) {
	t.Helper()
	if err := c.Close(); err != nil {
		t.Error(err)
	}
}

func mustUser(t *testing.T, s *Store, nu NewUser) *User {
	t.Helper()
	u, err := s.CreateUser(context.Background(), "test", nu)
	if err != nil {
		t.Fatalf("CreateUser(%+v): %v", nu, err)
	}
	return u
}

func auditActions(t *testing.T, s *Store, target string) []string {
	t.Helper()
	es, err := s.AuditFor(context.Background(), target, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := len(es) - 1; i >= 0; i-- { // oldest first
		out = append(out, es[i].Action)
	}
	return out
}

func TestDriverAndPragmasOnEveryConnection(t *testing.T) {
	s := openTest(t, "")
	t.Logf("driver %s", sqliteDriverName)
	ctx := context.Background()
	// Hold several connections at once so the pool must open new ones; each
	// must carry the pragmas, not only the first.
	for i := 0; i < 4; i++ {
		c, err := s.db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer closeOK(t, c)
		var jm, sync string
		var busy, fk int
		for q, dst := range map[string]any{
			"PRAGMA journal_mode": &jm, "PRAGMA busy_timeout": &busy,
			"PRAGMA foreign_keys": &fk, "PRAGMA synchronous": &sync,
		} {
			if err := c.QueryRowContext(ctx, q).Scan(dst); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		if jm != "wal" || busy != 5000 || fk != 1 || sync != "1" {
			t.Fatalf("conn %d: journal_mode=%s busy_timeout=%d foreign_keys=%d synchronous=%s; want wal 5000 1 1(NORMAL)", i, jm, busy, fk, sync)
		}
	}
}

func TestFilesCreatedWithPrivateModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	path := filepath.Join(dir, "users.db")
	s := openTest(t, path)
	mustUser(t, s, NewUser{Username: "alice"}) // forces -wal to exist
	for p, want := range map[string]os.FileMode{dir: 0o700 | os.ModeDir, path: 0o600, path + "-wal": 0o600} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode(), want)
		}
	}
}

func TestCreateAndGetUser(t *testing.T) {
	bothBackends(t, func(t *testing.T) {
		now := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
		s := openTest(t, "", func(o *Options) { o.Now = func() time.Time { return now } })
		ctx := context.Background()
		u := mustUser(t, s, NewUser{Username: "Alice", Email: "Alice@Example.COM", GivenName: "Alice", FamilyName: "Liddell", Roles: []string{"editor", "admin", "editor"}})
		if !strings.HasPrefix(u.ID, "u_") || len(u.ID) != 34 {
			t.Fatalf("id %q", u.ID)
		}
		if !u.Active || strings.Join(u.Roles, ",") != "admin,editor" || !u.CreatedAt.Equal(now.Truncate(time.Microsecond)) {
			t.Fatalf("created %+v", u)
		}
		for _, k := range []string{u.ID, "Alice", "alice", "ALICE", "alice@example.com", "ALICE@EXAMPLE.COM", " alice@example.com "} {
			got, err := s.GetUser(ctx, k)
			if err != nil {
				t.Fatalf("GetUser(%q): %v", k, err)
			}
			if got.ID != u.ID || got.Email != "Alice@Example.COM" || got.FamilyName != "Liddell" ||
				strings.Join(got.Roles, ",") != "admin,editor" || !got.CreatedAt.Equal(u.CreatedAt) || got.LastLoginAt != nil {
				t.Fatalf("GetUser(%q) = %+v, want %+v", k, got, u)
			}
		}
		if _, err := s.GetUser(ctx, "bob"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("GetUser(bob) = %v, want ErrNotFound", err)
		}
		if got := auditActions(t, s, u.ID); strings.Join(got, ",") != ActionUserCreate {
			t.Fatalf("audit %v", got)
		}
	})
}

func TestUniqueness(t *testing.T) {
	bothBackends(t, func(t *testing.T) {
		s := openTest(t, "")
		ctx := context.Background()
		mustUser(t, s, NewUser{Username: "alice", Email: "alice@example.com"})
		mustUser(t, s, NewUser{Username: "noemail1"})
		mustUser(t, s, NewUser{Username: "noemail2"}) // empty emails never clash
		for _, nu := range []NewUser{
			{Username: "alice"}, {Username: "ALICE"},
			{Username: "bob", Email: "ALICE@example.com"}, {Username: "bob", Email: "alice@EXAMPLE.com"},
		} {
			if _, err := s.CreateUser(ctx, "test", nu); !errors.Is(err, ErrConflict) {
				t.Errorf("CreateUser(%+v) = %v, want ErrConflict", nu, err)
			}
		}
		for _, nu := range []NewUser{
			{Username: ""}, {Username: " x"}, {Username: "a\nb"}, {Username: "x", Email: "nope"},
			{Username: "x", Roles: []string{"a,b"}}, {Username: "x", Roles: []string{""}},
		} {
			if _, err := s.CreateUser(ctx, "test", nu); !errors.Is(err, ErrInvalid) {
				t.Errorf("CreateUser(%+v) = %v, want ErrInvalid", nu, err)
			}
		}
		us, err := s.ListUsers(ctx, UserFilter{})
		if err != nil || len(us) != 3 {
			t.Fatalf("ListUsers = %d, %v; want 3 (failed creates left nothing)", len(us), err)
		}
		es, _ := s.Audit(ctx, 100)
		if n := countAction(es, ActionUserCreate); n != 3 {
			t.Fatalf("%d user.create audit rows, want 3", n)
		}
	})
}

func countAction(es []AuditEvent, action string) int {
	n := 0
	for _, e := range es {
		if e.Action == action {
			n++
		}
	}
	return n
}

func TestUpdateUser(t *testing.T) {
	bothBackends(t, func(t *testing.T) {
		s := openTest(t, "")
		ctx := context.Background()
		a := mustUser(t, s, NewUser{Username: "alice", Email: "a@x.io"})
		mustUser(t, s, NewUser{Username: "bob", Email: "b@x.io"})
		email, name := "B@X.IO", "Bob"
		if _, err := s.UpdateUser(ctx, "t", a.ID, UserUpdate{Email: &email}); !errors.Is(err, ErrConflict) {
			t.Fatalf("email clash: %v", err)
		}
		if _, err := s.UpdateUser(ctx, "t", a.ID, UserUpdate{Username: &name}); !errors.Is(err, ErrConflict) {
			t.Fatalf("username clash: %v", err)
		}
		newEmail, given := "Alice@New.io", "Alice"
		u, err := s.UpdateUser(ctx, "t", a.ID, UserUpdate{Email: &newEmail, GivenName: &given})
		if err != nil || u.Email != newEmail || u.GivenName != given {
			t.Fatalf("UpdateUser = %+v, %v", u, err)
		}
		if got, err := s.GetUser(ctx, "alice@new.io"); err != nil || got.ID != a.ID {
			t.Fatalf("GetUser(new email) = %v, %v", got, err)
		}
		if _, err := s.GetUser(ctx, "a@x.io"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("old email still resolves: %v", err)
		}
		if _, err := s.UpdateUser(ctx, "t", "u_missing", UserUpdate{GivenName: &given}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("missing user: %v", err)
		}
		if got := auditActions(t, s, a.ID); strings.Join(got, ",") != "user.create,user.update" {
			t.Fatalf("audit %v", got)
		}
	})
}

func TestRoles(t *testing.T) {
	bothBackends(t, func(t *testing.T) {
		s := openTest(t, "")
		ctx := context.Background()
		u := mustUser(t, s, NewUser{Username: "alice", Roles: []string{"viewer"}})
		if err := s.GrantRoles(ctx, "admin", u.ID, "editor", "viewer", "ops:deploy"); err != nil {
			t.Fatal(err)
		}
		if err := s.GrantRoles(ctx, "admin", u.ID, "editor"); err != nil { // no-op, no audit row
			t.Fatal(err)
		}
		if err := s.RevokeRoles(ctx, "admin", u.ID, "viewer", "never-had"); err != nil {
			t.Fatal(err)
		}
		got, _ := s.GetUser(ctx, u.ID)
		if strings.Join(got.Roles, ",") != "editor,ops:deploy" || !got.HasRole("editor") || got.HasRole("viewer") {
			t.Fatalf("roles %v", got.Roles)
		}
		if err := s.GrantRoles(ctx, "admin", "u_missing", "x"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("grant to missing user: %v", err)
		}
		for _, bad := range []string{"bad role", "tab\trole", "nl\n", "del\x7f", ""} {
			if err := s.GrantRoles(ctx, "admin", u.ID, bad); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "role") {
				t.Fatalf("bad role %q: %v", bad, err)
			}
		}
		es, _ := s.AuditFor(ctx, u.ID, 10)
		if len(es) != 3 || es[1].Action != ActionRoleGrant || es[0].Action != ActionRoleRevoke || es[0].Actor != "admin" {
			t.Fatalf("audit %+v", es)
		}
		var d struct{ Roles []string }
		if err := json.Unmarshal([]byte(es[1].Detail), &d); err != nil || strings.Join(d.Roles, ",") != "editor,ops:deploy" {
			t.Fatalf("grant detail %s", es[1].Detail)
		}
		if err := json.Unmarshal([]byte(es[0].Detail), &d); err != nil || strings.Join(d.Roles, ",") != "viewer" {
			t.Fatalf("revoke detail %s", es[0].Detail)
		}
		list, err := s.ListUsers(ctx, UserFilter{Role: "editor"})
		if err != nil || len(list) != 1 || list[0].ID != u.ID {
			t.Fatalf("ListUsers(role) = %v, %v", list, err)
		}
	})
}

func TestListUsersFilters(t *testing.T) {
	bothBackends(t, func(t *testing.T) {
		s := openTest(t, "")
		ctx := context.Background()
		for _, n := range []string{"carol", "alice", "bob", "al_x"} {
			mustUser(t, s, NewUser{Username: n, Email: n + "@Example.com"})
		}
		bob, _ := s.GetUser(ctx, "bob")
		if err := s.SetActive(ctx, "t", bob.ID, false); err != nil {
			t.Fatal(err)
		}
		names := func(f UserFilter) string {
			us, err := s.ListUsers(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			var n []string
			for _, u := range us {
				n = append(n, u.Username)
			}
			return strings.Join(n, ",")
		}
		yes, no := true, false
		for f, want := range map[*UserFilter]string{
			{}:                     "al_x,alice,bob,carol",
			{Query: "AL"}:          "al_x,alice",
			{Query: "al_"}:         "al_x", // _ is literal, not a wildcard
			{Query: "EXAMPLE.com"}: "al_x,alice,bob,carol",
			{Active: &no}:          "bob",
			{Active: &yes}:         "al_x,alice,carol",
			{Limit: 2, Offset: 1}:  "alice,bob",
			{Query: "zzz"}:         "",
		} {
			if got := names(*f); got != want {
				t.Errorf("ListUsers(%+v) = %q, want %q", *f, got, want)
			}
		}
	})
}

func TestDisableEnableAndLookups(t *testing.T) {
	bothBackends(t, func(t *testing.T) {
		s := openTest(t, "")
		ctx := context.Background()
		const iss = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc"
		u := mustUser(t, s, NewUser{Username: "alice", Roles: []string{"admin"}})
		if err := s.LinkIdentity(ctx, "t", u.ID, iss, "sub-1", "Google"); err != nil {
			t.Fatal(err)
		}
		if err := s.SetActive(ctx, "t", u.ID, false); err != nil {
			t.Fatal(err)
		}
		if err := s.SetActive(ctx, "t", u.ID, false); err != nil { // no change, no audit row
			t.Fatal(err)
		}
		got, err := s.LookupIdentity(ctx, iss, "sub-1")
		if !errors.Is(err, ErrDisabled) || got == nil || got.ID != u.ID || got.Active {
			t.Fatalf("LookupIdentity(disabled) = %+v, %v", got, err)
		}
		if err := s.SetActive(ctx, "t", u.ID, true); err != nil {
			t.Fatal(err)
		}
		got, err = s.LookupIdentity(ctx, iss, "sub-1")
		if err != nil || !got.Active || strings.Join(got.Roles, ",") != "admin" {
			t.Fatalf("LookupIdentity(enabled) = %+v, %v", got, err)
		}
		if err := s.SetActive(ctx, "t", "u_missing", false); !errors.Is(err, ErrNotFound) {
			t.Fatalf("SetActive(missing) = %v", err)
		}
		if got := auditActions(t, s, u.ID); strings.Join(got, ",") != "user.create,identity.link,user.disable,user.enable" {
			t.Fatalf("audit %v", got)
		}
	})
}

func TestIdentities(t *testing.T) {
	bothBackends(t, func(t *testing.T) {
		s := openTest(t, "")
		ctx := context.Background()
		const iss = "https://issuer.example"
		a := mustUser(t, s, NewUser{Username: "alice"})
		b := mustUser(t, s, NewUser{Username: "bob"})
		if err := s.LinkIdentity(ctx, "t", a.ID, iss, "S1", ""); err != nil {
			t.Fatal(err)
		}
		if err := s.LinkIdentity(ctx, "t", a.ID, iss, "S1", ""); err != nil { // same owner: no-op
			t.Fatalf("relink same user: %v", err)
		}
		if err := s.LinkIdentity(ctx, "t", b.ID, iss, "S1", ""); !errors.Is(err, ErrConflict) {
			t.Fatalf("link to another user: %v", err)
		}
		if err := s.LinkIdentity(ctx, "t", b.ID, iss, "s1", "Okta"); err != nil { // sub is case-sensitive
			t.Fatal(err)
		}
		if err := s.LinkIdentity(ctx, "t", b.ID, iss+"/other", "S1", ""); err != nil { // same sub, other issuer
			t.Fatal(err)
		}
		if err := s.LinkIdentity(ctx, "t", "u_missing", iss, "S9", ""); !errors.Is(err, ErrNotFound) {
			t.Fatalf("link missing user: %v", err)
		}
		if err := s.LinkIdentity(ctx, "t", a.ID, "", "S9", ""); !errors.Is(err, ErrInvalid) {
			t.Fatalf("empty issuer: %v", err)
		}
		for sub, want := range map[string]string{"S1": a.ID, "s1": b.ID} {
			u, err := s.LookupIdentity(ctx, iss, sub)
			if err != nil || u.ID != want {
				t.Fatalf("LookupIdentity(%s) = %v, %v", sub, u, err)
			}
		}
		if _, err := s.LookupIdentity(ctx, iss, "nobody"); !errors.Is(err, ErrNotFound) || errors.Is(err, ErrUnavailable) {
			t.Fatalf("unknown identity: %v", err)
		}
		ids, err := s.ListIdentities(ctx, b.ID)
		if err != nil || len(ids) != 2 || ids[0].Provider != "Okta" {
			t.Fatalf("ListIdentities = %+v, %v", ids, err)
		}
		if err := s.UnlinkIdentity(ctx, "t", iss, "S1"); err != nil {
			t.Fatal(err)
		}
		if err := s.UnlinkIdentity(ctx, "t", iss, "S1"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("double unlink: %v", err)
		}
		if _, err := s.LookupIdentity(ctx, iss, "S1"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("after unlink: %v", err)
		}
		if got := auditActions(t, s, a.ID); strings.Join(got, ",") != "user.create,identity.link,identity.unlink" {
			t.Fatalf("audit %v", got)
		}
	})
}

func TestServiceAccounts(t *testing.T) {
	bothBackends(t, func(t *testing.T) {
		s := openTest(t, "")
		ctx := context.Background()
		const iss = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_x"
		sa, err := s.AddServiceAccount(ctx, "admin", NewServiceAccount{Issuer: iss, ClientID: "client-a",
			User: &NewUser{Username: "svc-billing", Roles: []string{"billing"}}})
		if err != nil || sa.Username != "svc-billing" || !sa.Active {
			t.Fatalf("AddServiceAccount(new user) = %+v, %v", sa, err)
		}
		human := mustUser(t, s, NewUser{Username: "ops"})
		if _, err := s.AddServiceAccount(ctx, "admin", NewServiceAccount{Issuer: iss, ClientID: "client-b", UserID: human.ID}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AddServiceAccount(ctx, "admin", NewServiceAccount{Issuer: iss, ClientID: "client-a", UserID: human.ID}); !errors.Is(err, ErrConflict) {
			t.Fatalf("duplicate client: %v", err)
		}
		// A failed add that would also have created a user leaves no user behind.
		if _, err := s.AddServiceAccount(ctx, "admin", NewServiceAccount{Issuer: iss, ClientID: "client-a", User: &NewUser{Username: "ghost"}}); !errors.Is(err, ErrConflict) {
			t.Fatalf("duplicate client with new user: %v", err)
		}
		if _, err := s.GetUser(ctx, "ghost"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("half-written service account user: %v", err)
		}
		if _, err := s.AddServiceAccount(ctx, "admin", NewServiceAccount{Issuer: iss, ClientID: "c", UserID: "u_missing"}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("missing user: %v", err)
		}
		if _, err := s.AddServiceAccount(ctx, "admin", NewServiceAccount{Issuer: iss, ClientID: "c"}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("neither user nor new user: %v", err)
		}
		u, err := s.LookupServiceAccount(ctx, iss, "client-a")
		if err != nil || u.ID != sa.UserID || strings.Join(u.Roles, ",") != "billing" {
			t.Fatalf("LookupServiceAccount = %+v, %v", u, err)
		}
		if _, err := s.LookupServiceAccount(ctx, iss+"x", "client-a"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("other issuer: %v", err)
		}
		list, err := s.ListServiceAccounts(ctx, iss)
		if err != nil || len(list) != 2 || list[0].ClientID != "client-a" || list[1].Username != "ops" {
			t.Fatalf("ListServiceAccounts = %+v, %v", list, err)
		}
		if all, _ := s.ListServiceAccounts(ctx, ""); len(all) != 2 {
			t.Fatalf("all service accounts %d", len(all))
		}
		if err := s.SetActive(ctx, "admin", sa.UserID, false); err != nil {
			t.Fatal(err)
		}
		if _, err := s.LookupServiceAccount(ctx, iss, "client-a"); !errors.Is(err, ErrDisabled) {
			t.Fatalf("disabled service account: %v", err)
		}
		if err := s.RemoveServiceAccount(ctx, "admin", iss, "client-a"); err != nil {
			t.Fatal(err)
		}
		if err := s.RemoveServiceAccount(ctx, "admin", iss, "client-a"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("double remove: %v", err)
		}
		if _, err := s.GetUser(ctx, "svc-billing"); err != nil {
			t.Fatalf("removing the mapping must keep the user: %v", err)
		}
		if got := auditActions(t, s, sa.UserID); strings.Join(got, ",") != "user.create,service_account.add,user.disable,service_account.remove" {
			t.Fatalf("audit %v", got)
		}
	})
}

func TestTouchLoginAndAuditOrder(t *testing.T) {
	bothBackends(t, func(t *testing.T) {
		tick := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
		s := openTest(t, "", func(o *Options) {
			o.Now = func() time.Time { tick = tick.Add(time.Second); return tick }
		})
		ctx := context.Background()
		u := mustUser(t, s, NewUser{Username: "alice"})
		if err := s.TouchLogin(ctx, u.ID); err != nil {
			t.Fatal(err)
		}
		got, _ := s.GetUser(ctx, u.ID)
		if got.LastLoginAt == nil || !got.LastLoginAt.After(got.CreatedAt) {
			t.Fatalf("last login %v, created %v", got.LastLoginAt, got.CreatedAt)
		}
		if err := s.TouchLogin(ctx, "u_missing"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("TouchLogin(missing) = %v", err)
		}
		es, err := s.Audit(ctx, 2)
		if err != nil || len(es) != 2 || es[0].Action != ActionUserLogin || es[0].Actor != u.ID || es[1].Action != ActionUserCreate || es[0].ID <= es[1].ID {
			t.Fatalf("Audit(2) = %+v, %v", es, err)
		}
		all, _ := s.Audit(ctx, 0)
		if all[len(all)-1].Action != ActionSchemaMigrate || all[len(all)-1].Actor != "system" {
			t.Fatalf("oldest audit row %+v, want the migration", all[len(all)-1])
		}
	})
}

func TestReopenKeepsData(t *testing.T) {
	bothBackends(t, func(t *testing.T) {
		path := newLocation(t)
		s1, err := Open(context.Background(), optionsFor(path))
		if err != nil {
			t.Fatal(err)
		}
		u := mustUser(t, s1, NewUser{Username: "alice"})
		closeOK(t, s1)
		s2 := openTest(t, path)
		if _, err := s2.GetUser(context.Background(), u.ID); err != nil {
			t.Fatal(err)
		}
		es, _ := s2.Audit(context.Background(), 100)
		if n := countAction(es, ActionSchemaMigrate); n != SchemaVersion() {
			t.Fatalf("%d migrations audited after reopen, want %d", n, SchemaVersion())
		}
	})
}

func TestRebind(t *testing.T) {
	d := &dialect{numberedPlaceholders: true}
	if got := d.rebind("a = ? AND b IN (?, ?)"); got != "a = $1 AND b IN ($2, $3)" {
		t.Fatal(got)
	}
	if got := sqliteDialect.rebind("a = ?"); got != "a = ?" {
		t.Fatal(got)
	}
}
