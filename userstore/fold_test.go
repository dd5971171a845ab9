package userstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// TestFoldKey: ASCII letters compare case-insensitively, every other
// character only with itself. strings.ToLower / strings.EqualFold would
// make the foreign forms below equal to the ASCII ones.
func TestFoldKey(t *testing.T) {
	for _, c := range []struct {
		name  string
		a, b  string
		equal bool
	}{
		{"ASCII case", "Kate@Example.COM", "kate@example.com", true},
		{"ASCII white space around", " kate@example.com\t\r\n", "kate@example.com", true},
		{"Kelvin sign is not K", "\u212Aate@example.com", "kate@example.com", false},
		{"Kelvin sign is not k either", "\u212Aate@example.com", "Kate@example.com", false},
		{"long s is not s", "\u017Fam@example.com", "sam@example.com", false},
		{"sharp s is not ss", "stra\u00DFe@example.com", "strasse@example.com", false},
		{"dotted capital I is not i", "\u0130nfo@example.com", "info@example.com", false},
		{"dotless i is not i", "\u0131nfo@example.com", "info@example.com", false},
		{"Cyrillic a is not a", "\u0430lice@example.com", "alice@example.com", false},
		{"Cyrillic capital A is not a", "\u0410lice@example.com", "alice@example.com", false},
		{"Greek capital omicron is not o", "b\u039Fb", "bob", false},
		{"fullwidth A is not a", "\uFF21nn@example.com", "ann@example.com", false},
		{"non-ASCII case is not folded", "\u00C5sa@example.com", "\u00E5sa@example.com", false},
		{"non-ASCII kept, ASCII around it folded", "\u00C5SA@Example.com", "\u00C5sa@example.com", true},
		{"no-break space is not trimmed", "kate@example.com\u00A0", "kate@example.com", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := FoldKey(c.a) == FoldKey(c.b); got != c.equal {
				t.Errorf("FoldKey(%q) = %q, FoldKey(%q) = %q: equal %v, want %v", c.a, FoldKey(c.a), c.b, FoldKey(c.b), got, c.equal)
			}
			if k := FoldKey(c.a); FoldKey(k) != k {
				t.Errorf("FoldKey is not idempotent on %q", c.a)
			}
		})
	}
}

// TestLookupsFoldASCIIOnly: a look-alike address neither finds nor is
// refused as someone else's; the ASCII case of the real one still matches.
func TestLookupsFoldASCIIOnly(t *testing.T) {
	bothBackends(t, func(t *testing.T) {
		ctx := context.Background()
		s := openTest(t, "")
		kate := mustUser(t, s, NewUser{Username: "kate", Email: "Kate@Example.com"})
		for _, ref := range []string{"kate@example.com", "KATE@EXAMPLE.COM", "Kate"} {
			if u, err := s.GetUser(ctx, ref); err != nil || u.ID != kate.ID {
				t.Errorf("GetUser(%q) = %v, %v; want kate", ref, u, err)
			}
		}
		for _, ref := range []string{"\u212Aate@example.com", "\u212Aate", "\u212ATE@EXAMPLE.COM", "k\u0430te@example.com"} {
			if u, err := s.GetUser(ctx, ref); !errors.Is(err, ErrNotFound) {
				t.Errorf("GetUser(%q) = %v, %v; want ErrNotFound", ref, u, err)
			}
		}
		// A first sign-in matched by a look-alike email is not kate's.
		_, err := s.AdmitIdentity(ctx, "login:test", Admission{Issuer: iss, Sub: "kelvin", MatchEmail: "\u212Aate@example.com"})
		if !errors.Is(err, ErrNotFound) {
			t.Fatalf("AdmitIdentity matched a look-alike email: %v", err)
		}
		// The look-alike is a different address: it may belong to someone else,
		// and then names that user, not kate.
		other := mustUser(t, s, NewUser{Username: "\u212Aate", Email: "\u212Aate@example.com"})
		if u, err := s.GetUser(ctx, "\u212Aate@example.com"); err != nil || u.ID != other.ID {
			t.Fatalf("GetUser(look-alike) = %v, %v; want the look-alike's owner", u, err)
		}
		if u, err := s.GetUser(ctx, "kate@example.com"); err != nil || u.ID != kate.ID {
			t.Fatalf("GetUser(kate) = %v, %v", u, err)
		}
		// ListUsers' query folds the same way.
		if us, err := s.ListUsers(ctx, UserFilter{Query: "KATE@"}); err != nil || len(us) != 1 || us[0].ID != kate.ID {
			t.Fatalf("ListUsers(KATE@) = %v, %v", us, err)
		}
	})
}

// TestUsernamesAndEmailsShareANamespace: a username never equals another
// user's email (nor the reverse), nor has the form of a user id, whether
// the user is created, updated or admitted.
func TestUsernamesAndEmailsShareANamespace(t *testing.T) {
	bothBackends(t, func(t *testing.T) {
		ctx := context.Background()
		s := openTest(t, "")
		boss := mustUser(t, s, NewUser{Username: "boss", Email: "boss@example.com"})
		chief := mustUser(t, s, NewUser{Username: "chief@example.com"}) // no user has that email
		intern := mustUser(t, s, NewUser{Username: "intern", Email: "intern@example.com"})
		mustUser(t, s, NewUser{Username: "self@example.com", Email: "Self@Example.com"}) // one's own email is fine

		for _, c := range []struct {
			name string
			nu   NewUser
			want error
		}{
			{"username is another user's email", NewUser{Username: "boss@example.com"}, ErrConflict},
			{"username is another user's email, ASCII case", NewUser{Username: "Boss@EXAMPLE.com"}, ErrConflict},
			{"email is another user's username", NewUser{Username: "x", Email: "CHIEF@example.com"}, ErrConflict},
			{"username is another user's username", NewUser{Username: "BOSS"}, ErrConflict},
			{"email is another user's email", NewUser{Username: "x", Email: "Boss@example.com"}, ErrConflict},
			{"username is a user id", NewUser{Username: boss.ID}, ErrInvalid},
			{"username is a user id in capitals", NewUser{Username: strings.ToUpper(boss.ID)}, ErrInvalid},
			{"username has the form of a user id", NewUser{Username: "u_0123456789abcdef0123456789abcdef"}, ErrInvalid},
		} {
			t.Run("create: "+c.name, func(t *testing.T) {
				if u, err := s.CreateUser(ctx, "test", c.nu); !errors.Is(err, c.want) {
					t.Fatalf("CreateUser(%+v) = %v, %v; want %v", c.nu, u, err, c.want)
				}
			})
			t.Run("admit: "+c.name, func(t *testing.T) {
				nu := c.nu
				_, err := s.AdmitIdentity(ctx, "login:test", Admission{Issuer: iss, Sub: "new-" + c.name, Create: &nu})
				if !errors.Is(err, c.want) {
					t.Fatalf("AdmitIdentity(create %+v) = %v; want %v", c.nu, err, c.want)
				}
				if _, err := s.LookupIdentity(ctx, iss, "new-"+c.name); !errors.Is(err, ErrNotFound) {
					t.Errorf("a refused admission left a link: %v", err)
				}
			})
		}
		// Names close to an id but not of its form are ordinary usernames.
		for _, name := range []string{"u_0123456789abcdef0123456789abcde", "u_0123456789abcdef0123456789abcdeg", "v_0123456789abcdef0123456789abcdef"} {
			mustUser(t, s, NewUser{Username: name})
		}

		str := func(v string) *string { return &v }
		for _, c := range []struct {
			name string
			upd  UserUpdate
			want error
		}{
			{"username to another user's email", UserUpdate{Username: str("BOSS@example.com")}, ErrConflict},
			{"email to another user's username", UserUpdate{Email: str("chief@EXAMPLE.com")}, ErrConflict},
			{"username to a user id", UserUpdate{Username: str(chief.ID)}, ErrInvalid},
		} {
			t.Run("update: "+c.name, func(t *testing.T) {
				if u, err := s.UpdateUser(ctx, "test", intern.ID, c.upd); !errors.Is(err, c.want) {
					t.Fatalf("UpdateUser = %v, %v; want %v", u, err, c.want)
				}
			})
		}
		// Own username and own email may meet.
		if _, err := s.UpdateUser(ctx, "test", intern.ID, UserUpdate{Username: str("Intern@example.com")}); err != nil {
			t.Fatalf("username to the user's own email: %v", err)
		}

		// The reference meant for boss still names boss, and grants reach boss.
		if u, err := s.GetUser(ctx, "boss@example.com"); err != nil || u.ID != boss.ID {
			t.Fatalf("GetUser(boss@example.com) = %v, %v; want boss", u, err)
		}
		if u, err := s.GetUser(ctx, "intern@example.com"); err != nil || u.ID != intern.ID {
			t.Fatalf("GetUser(intern@example.com) = %v, %v; want intern", u, err)
		}
	})
}

// insertRawUser writes a user row as an older build (or a hand edit)
// could have, bypassing today's checks.
func insertRawUser(t *testing.T, db *sql.DB, id, username, usernameLower, email string, emailLower any) {
	t.Helper()
	insertRawUserQ(t, db, func(q string) string { return q }, id, username, usernameLower, email, emailLower)
}

// insertRawUserQ is insertRawUser with the query adapted by rebind (a
// Store's q, for PostgreSQL placeholders).
func insertRawUserQ(t *testing.T, db *sql.DB, rebind func(string) string, id, username, usernameLower, email string, emailLower any) {
	t.Helper()
	if _, err := db.Exec(rebind(`INSERT INTO users (id, username, username_lower, email, email_lower, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, '2025-01-01T00:00:00.000000Z', '2025-01-01T00:00:00.000000Z')`),
		id, username, usernameLower, email, emailLower); err != nil {
		t.Fatal(err)
	}
}

// TestGetUserAmbiguousReference: when a database still holds a reference
// that names two users, GetUser refuses rather than picks one; GetUserByID
// is never ambiguous.
func TestGetUserAmbiguousReference(t *testing.T) {
	bothBackends(t, func(t *testing.T) {
		ctx := context.Background()
		s := openTest(t, "")
		boss := mustUser(t, s, NewUser{Username: "boss", Email: "boss@example.com"})
		const shadow = "u_00000000000000000000000000000001"
		const idName = "u_00000000000000000000000000000002"
		insertRawUserQ(t, s.db, s.q, shadow, "Boss@Example.com", "boss@example.com", "", nil)
		insertRawUserQ(t, s.db, s.q, idName, boss.ID, boss.ID, "", nil)

		for _, c := range []struct {
			ref  string
			want []string // ids the message names
		}{
			{"boss@example.com", []string{boss.ID + " (email)", shadow + " (username)"}},
			{"BOSS@example.com", []string{boss.ID + " (email)", shadow + " (username)"}},
			{boss.ID, []string{boss.ID + " (id)", idName + " (username)"}},
		} {
			u, err := s.GetUser(ctx, c.ref)
			if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "ambiguous reference") {
				t.Errorf("GetUser(%q) = %v, %v; want an ambiguous-reference ErrConflict", c.ref, u, err)
				continue
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("GetUser(%q): %q does not name %s", c.ref, err, w)
				}
			}
		}
		for ref, want := range map[string]string{"boss": boss.ID, shadow: shadow, idName: idName} {
			if u, err := s.GetUser(ctx, ref); err != nil || u.ID != want {
				t.Errorf("GetUser(%q) = %v, %v; want %s", ref, u, err, want)
			}
		}
		if u, err := s.GetUserByID(ctx, boss.ID); err != nil || u.ID != boss.ID || u.Email != "boss@example.com" {
			t.Errorf("GetUserByID(boss) = %v, %v", u, err)
		}
		for _, ref := range []string{"boss", "boss@example.com", strings.ToUpper(boss.ID), " " + boss.ID} {
			if u, err := s.GetUserByID(ctx, ref); !errors.Is(err, ErrNotFound) {
				t.Errorf("GetUserByID(%q) = %v, %v; want ErrNotFound (ids only, exact)", ref, u, err)
			}
		}
	})
}

// foldMigrationVersion is the migration that runs refoldKeys.
const foldMigrationVersion = 5

// TestFoldMigrationRecomputesKeys: a database whose keys were made with
// strings.ToLower gets FoldKey keys, so look-alikes stop matching.
func TestFoldMigrationRecomputesKeys(t *testing.T) {
	if m := migrations[foldMigrationVersion-1]; m.apply == nil {
		t.Fatalf("migration %d (%s) does not recompute the keys", m.version, m.name)
	}
	path := filepath.Join(t.TempDir(), "users.db")
	raw, err := sql.Open(sqliteDriverName, path)
	if err != nil {
		t.Fatal(err)
	}
	before := foldMigrationVersion - 1
	for _, m := range migrations[:before] {
		for _, stmt := range m.stmts {
			if _, err := raw.Exec(strings.ReplaceAll(stmt, "{{AUTOID}}", sqliteDialect.autoID)); err != nil {
				t.Fatal(err)
			}
		}
	}
	old := func(v string) string { return strings.ToLower(strings.TrimSpace(v)) }
	users := []struct{ id, username, email string }{
		{"u_00000000000000000000000000000001", "\u212Aate", "\u212Aate@Example.com"},
		{"u_00000000000000000000000000000002", "\u00C9lodie", "\u00C9LODIE@example.com"},
		{"u_00000000000000000000000000000003", "Plain", ""},
	}
	for _, u := range users {
		var ek any
		if u.email != "" {
			ek = old(u.email)
		}
		insertRawUser(t, raw, u.id, u.username, old(u.username), u.email, ek)
	}
	if _, err := raw.Exec(`INSERT INTO invitations (id, secret_hash, email, email_lower, created_by, created_at, expires_at, status, status_at)
		VALUES ('inv_1', 'h', ?, ?, 'test', 't', 't', 'pending', 't')`, "\u212Aim@Example.com", old("\u212Aim@Example.com")); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, before)); err != nil {
		t.Fatal(err)
	}
	closeOK(t, raw)

	s := openTest(t, path)
	ctx := context.Background()
	for _, u := range users {
		var uk string
		var ek sql.NullString
		if err := s.db.QueryRow(`SELECT username_lower, email_lower FROM users WHERE id = ?`, u.id).Scan(&uk, &ek); err != nil {
			t.Fatal(err)
		}
		if uk != FoldKey(u.username) || ek.Valid != (u.email != "") || ek.String != FoldKey(u.email) {
			t.Errorf("user %s: keys %q, %v; want %q, %q", u.id, uk, ek, FoldKey(u.username), FoldKey(u.email))
		}
	}
	var ik string
	if err := s.db.QueryRow(`SELECT email_lower FROM invitations WHERE id = 'inv_1'`).Scan(&ik); err != nil || ik != "\u212Aim@example.com" {
		t.Errorf("invitation key %q, %v", ik, err)
	}
	for _, ref := range []string{"kate", "kate@example.com", "\u00E9lodie", "\u00E9lodie@example.com"} {
		if u, err := s.GetUser(ctx, ref); !errors.Is(err, ErrNotFound) {
			t.Errorf("after migration GetUser(%q) = %v, %v; want ErrNotFound", ref, u, err)
		}
	}
	for ref, want := range map[string]string{
		"\u212Aate": users[0].id, "\u212Aate@example.com": users[0].id,
		"\u00C9LODIE": users[1].id, "\u00C9lodie@Example.com": users[1].id, "plain": users[2].id,
	} {
		if u, err := s.GetUser(ctx, ref); err != nil || u.ID != want {
			t.Errorf("after migration GetUser(%q) = %v, %v; want %s", ref, u, err, want)
		}
	}
	// kate@example.com is free now: the Kelvin-sign user no longer holds it.
	mustUser(t, s, NewUser{Username: "kate", Email: "kate@example.com"})
}
