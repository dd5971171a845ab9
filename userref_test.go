package caddycognito

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-cognito/caddy-cognito/internal/adminapi"
	"github.com/caddy-cognito/caddy-cognito/userstore"
)

// TestUserReferencesNameOneUser: a username that is another user's email
// is refused by the CLI (exit 4) and the admin API (409); and where a
// database still holds such a pair (written by an older build), a
// reference to it is ambiguous, so neither the admin API nor the CLI acts
// on one of the two users: 409 and exit 4, with "ambiguous reference".
func TestUserReferencesNameOneUser(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "refs.db")
	s, err := userstore.Open(ctx, userstore.Options{Path: db})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	}()
	boss, err := s.CreateUser(ctx, "test", userstore.NewUser{Username: "boss", Email: "boss@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	ops := newAdminOperations(nil, func() (*userstore.Store, error) { return s, nil }, nil, nil)
	call := func(method, path, body string) (int, string) {
		t.Helper()
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		status, result, err := ops.Do(req, "test")
		if err != nil {
			return adminapi.StatusFor(err), err.Error()
		}
		out, _ := json.Marshal(result)
		return status, string(out)
	}

	// Creating the shadowing user is refused.
	if code, msg := call("POST", "/cognito/users", `{"username":"Boss@Example.com"}`); code != http.StatusConflict {
		t.Fatalf("admin API created a username equal to another user's email: %d %s", code, msg)
	}
	if _, err := runCognitoCLI(t, "users", "add", "--db", db, "--username", "BOSS@example.com"); exitCodeOf(err) != exitConflict {
		t.Fatalf("CLI add of a username equal to another user's email: %v, exit %d; want %d", err, exitCodeOf(err), exitConflict)
	}

	// A pair an older build let in.
	const shadow = "u_00000000000000000000000000000001"
	now := userstore.FormatTime(time.Now())
	if err := s.Write(ctx, "legacy row", func(tx *userstore.Tx) error {
		_, err := tx.Exec(`INSERT INTO users (id, username, username_lower, email, email_lower, created_at, updated_at)
			VALUES (?, 'boss@example.com', 'boss@example.com', '', NULL, ?, ?)`, shadow, now, now)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/cognito/users/boss@example.com", ""},
		{"POST", "/cognito/users/Boss@Example.com/roles", `{"roles":["admin"]}`},
		{"POST", "/cognito/users/boss@example.com/disable", ""},
	} {
		if code, msg := call(r.method, r.path, r.body); code != http.StatusConflict || !strings.Contains(msg, "ambiguous reference") {
			t.Errorf("%s %s: %d %s; want 409 ambiguous reference", r.method, r.path, code, msg)
		}
	}
	out, err := runCognitoCLI(t, "users", "grant", "--db", db, "boss@example.com", "admin")
	if exitCodeOf(err) != exitConflict || !strings.Contains(err.Error(), "ambiguous reference") {
		t.Errorf("CLI grant on an ambiguous reference: %v, exit %d; want %d\n%s", err, exitCodeOf(err), exitConflict, out)
	}
	for _, id := range []string{boss.ID, shadow} {
		u, err := s.GetUserByID(ctx, id)
		if err != nil || len(u.Roles) != 0 || !u.Active {
			t.Errorf("user %s changed through an ambiguous reference: %+v, %v", id, u, err)
		}
	}
	// The ids still name each one.
	if code, msg := call("POST", "/cognito/users/"+boss.ID+"/roles", `{"roles":["admin"]}`); code != http.StatusOK || !strings.Contains(msg, "admin") {
		t.Errorf("grant by id: %d %s", code, msg)
	}
}
