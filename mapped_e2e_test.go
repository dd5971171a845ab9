package caddycognito

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/caddy-cognito/caddy-cognito/userstore"
)

// adminCall sends one request to the running Caddy's admin API.
func adminCall(t *testing.T, method, path string, body any) (int, map[string]any) {
	t.Helper()
	status, raw := adminRaw(t, method, path, body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return status, out
}

// adminRaw sends one request to the admin API and returns the raw answer.
func adminRaw(t *testing.T, method, path string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "http://localhost:2999"+path, rd)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }() // read-only: nothing to flush
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

func TestMappedUsersInCaddy(t *testing.T) {
	ti := newTestIssuer(t)
	up := newEchoUpstream(t)
	db := filepath.Join(t.TempDir(), "cognito.db")
	tester := startCaddy(t, ti, up.URL, "store sqlite "+db, `
		cognito_bearer /admin/* {
			users mapped
			require role admin
		}
		cognito_bearer {
			users mapped
			unmapped_message "Ask for an invitation."
		}
	`)

	sub := "5f1c2a3e-0000-4000-8000-000000000001"
	token := ti.Sign(ti.AccessClaims(nil))
	auth := map[string][]string{"Authorization": {"Bearer " + token}}

	resp, body := do(t, tester, "/", auth)
	if resp.StatusCode != 403 || !strings.Contains(body, "Ask for an invitation.") {
		t.Fatalf("unmapped token: %d %q", resp.StatusCode, body)
	}

	if code, out := adminCall(t, "POST", "/cognito/users", map[string]any{"username": "alice", "email": "Alice@Example.com", "roles": []string{"editor"}}); code != 201 {
		t.Fatalf("create user: %d %v", code, out)
	}
	if code, out := adminCall(t, "POST", "/cognito/users/alice@example.com/identities", map[string]any{"sub": sub}); code != 200 {
		t.Fatalf("link identity: %d %v", code, out)
	}
	if code, _ := adminCall(t, "POST", "/cognito/users", map[string]any{"username": "bob"}); code != 201 {
		t.Fatalf("create bob: %d", code)
	}
	if code, _ := adminCall(t, "POST", "/cognito/users/bob/identities", map[string]any{"sub": sub}); code != 409 {
		t.Fatalf("linking alice's identity to bob: %d; want 409", code)
	}
	// A change without Content-Type: application/json (what a web page's
	// form or text/plain fetch sends) is refused, and changes nothing.
	for _, ct := range []string{"", "text/plain", "application/x-www-form-urlencoded", "application/jsonx"} {
		req, _ := http.NewRequest("POST", "http://localhost:2999/cognito/users", strings.NewReader(`{"username":"eve"}`))
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close() // read-only
		if resp.StatusCode != http.StatusUnsupportedMediaType {
			t.Errorf("POST /cognito/users with Content-Type %q: %d, want 415", ct, resp.StatusCode)
		}
	}
	if code, _ := adminCall(t, "GET", "/cognito/users/eve", nil); code != 404 {
		t.Errorf("a refused request created user eve: GET answered %d", code)
	}
	if code, _ := adminCall(t, "POST", "/cognito/users", map[string]any{"username": "bob", "typo": 1}); code != 400 {
		t.Fatalf("unknown field: %d; want 400", code)
	}

	resp, _ = do(t, tester, "/", auth)
	h, _ := up.seen()
	if resp.StatusCode != 200 || !strings.HasPrefix(h.Get("X-Auth-User"), "u_") || h.Get("X-Auth-Sub") != sub || h.Get("X-Auth-Roles") != "editor" {
		t.Fatalf("mapped user: %d, upstream %v", resp.StatusCode, h)
	}
	userID := h.Get("X-Auth-User")

	if resp, _ := do(t, tester, "/admin/x", auth); resp.StatusCode != 403 {
		t.Fatalf("editor on /admin: %d; want 403", resp.StatusCode)
	}
	if code, _ := adminCall(t, "POST", "/cognito/users/"+userID+"/roles", map[string]any{"roles": []string{"admin"}}); code != 200 {
		t.Fatalf("grant: %d", code)
	}
	if resp, _ := do(t, tester, "/admin/x", auth); resp.StatusCode != 200 {
		t.Fatalf("after grant, /admin: %d; want 200", resp.StatusCode)
	}

	// Disable from another connection, as the CLI in another process would:
	// the very next request is refused. (The window in which concurrent
	// requests share one look at the store is set to zero here, so that
	// the assertion does not lean on how long Open takes.)
	defer func(old time.Duration) { changeCheckAge = old }(changeCheckAge)
	changeCheckAge = 0
	other, err := userstore.Open(context.Background(), userstore.Options{Path: db})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := other.Close(); err != nil {
			t.Error(err)
		}
	}()
	if err := other.SetActive(context.Background(), "test", userID, false); err != nil {
		t.Fatal(err)
	}
	if resp, _ := do(t, tester, "/", auth); resp.StatusCode != 403 {
		t.Fatalf("disabled user: %d; want 403", resp.StatusCode)
	}
	if code, _ := adminCall(t, "POST", "/cognito/users/alice/enable", nil); code != 200 {
		t.Fatalf("enable: %d", code)
	}
	if resp, _ := do(t, tester, "/", auth); resp.StatusCode != 200 {
		t.Fatalf("re-enabled user: %d; want 200", resp.StatusCode)
	}

	// A client-credentials token maps through its service account.
	machine := ti.Sign(ti.AccessClaims(map[string]any{
		"sub": ti.ClientID, "client_id": ti.ClientID, "username": nil, "cognito:groups": nil, "scope": "reports/read",
	}))
	mauth := map[string][]string{"Authorization": {"Bearer " + machine}}
	if resp, _ := do(t, tester, "/", mauth); resp.StatusCode != 403 {
		t.Fatalf("service token without account: %d; want 403", resp.StatusCode)
	}
	if code, out := adminCall(t, "POST", "/cognito/service-accounts", map[string]any{"pool": "main", "client_id": ti.ClientID, "username": "reports-bot", "roles": []string{"admin"}}); code != 201 {
		t.Fatalf("add service account: %d %v", code, out)
	}
	resp, _ = do(t, tester, "/admin/report", mauth)
	h, _ = up.seen()
	if resp.StatusCode != 200 || h.Get("X-Auth-Roles") != "admin" || h.Get("X-Auth-User") == ti.ClientID {
		t.Fatalf("service account: %d, upstream %v", resp.StatusCode, h)
	}
	if code, _ := adminCall(t, "GET", "/cognito/users/nobody", nil); code != 404 {
		t.Fatalf("unknown user: %d; want 404", code)
	}
}

// runCognitoCLI runs `caddy cognito <args>` in-process.
func runCognitoCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := &cobra.Command{Use: "cognito", SilenceUsage: true, SilenceErrors: true}
	caddycmd.Commands()["cognito"].CobraFunc(root)
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func TestCLI(t *testing.T) {
	db := filepath.Join(t.TempDir(), "cli.db")
	out, err := runCognitoCLI(t, "users", "add", "--db", db, "--username", "carol", "--email", "carol@example.com", "--role", "editor", "--role", "viewer")
	if err != nil || !strings.Contains(out, "carol") || !strings.Contains(out, "editor,viewer") {
		t.Fatalf("add: %v\n%s", err, out)
	}
	if _, err := runCognitoCLI(t, "users", "add", "--db", db, "--username", "CAROL"); err == nil {
		t.Fatal("duplicate username accepted")
	}
	out, err = runCognitoCLI(t, "users", "list", "--db", db, "--json")
	var users []map[string]any
	if err != nil || json.Unmarshal([]byte(out), &users) != nil || len(users) != 1 {
		t.Fatalf("list --json: %v\n%s", err, out)
	}
	if _, err := runCognitoCLI(t, "users", "disable", "--db", db, "carol@EXAMPLE.com"); err != nil {
		t.Fatal(err)
	}
	out, _ = runCognitoCLI(t, "users", "show", "--db", db, "carol")
	if !strings.Contains(out, "disabled") {
		t.Fatalf("show after disable:\n%s", out)
	}
	if _, err := runCognitoCLI(t, "users", "show", "--db", db, "nobody"); err == nil {
		t.Fatal("show of an unknown user succeeded")
	}
	// The audit log names the CLI user as the actor of both changes.
	out, err = runCognitoCLI(t, "audit", "--db", db, "--limit", "2")
	if err != nil || !strings.Contains(out, "user.disable") || !strings.Contains(out, "user.create") || !strings.Contains(out, "cli") {
		t.Fatalf("audit: %v\n%s", err, out)
	}
	if _, err := runCognitoCLI(t, "audit", "--db", db, "--limit", "0"); err == nil {
		t.Fatal("audit --limit 0 accepted")
	}
	for _, args := range [][]string{
		{"users", "grant", "--db", db, "carol"},                  // no roles
		{"users", "add", "--db", db, "--email", "x@example.com"}, // no --username
		{"users", "add", "--db", db, "--username", "x", "--bogus"},
		{"service-accounts", "remove", "--db", db},
	} {
		if _, err := runCognitoCLI(t, args...); exitCodeOf(err) != exitUsage {
			t.Errorf("%q: error %v, exit %d; want exit %d", args, err, exitCodeOf(err), exitUsage)
		}
	}
	out, err = runCognitoCLI(t, "service-accounts", "add", "--db", db, "--issuer", "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_X", "--client-id", "abc123")
	if err != nil || !strings.Contains(out, "abc123") {
		t.Fatalf("service-accounts add: %v\n%s", err, out)
	}
	out, _ = runCognitoCLI(t, "service-accounts", "list", "--db", db)
	if !strings.Contains(out, "service:abc123") {
		t.Fatalf("service-accounts list:\n%s", out)
	}
}

// exitCodeOf reads the exit code Caddy's main would use for err.
func exitCodeOf(err error) int {
	if err == nil {
		return 0
	}
	// caddycmd's exitError is unexported; its ExitCode field is what
	// Caddy's main exits with.
	if v := reflect.ValueOf(err); v.Kind() == reflect.Pointer && v.Elem().Kind() == reflect.Struct {
		if f := v.Elem().FieldByName("ExitCode"); f.IsValid() {
			return int(f.Int())
		}
	}
	return 1
}

func TestExitCodes(t *testing.T) {
	for status, code := range map[int]int{404: exitNotFound, 409: exitConflict, 400: exitUsage, 503: exitUnavailable, 500: exitFailure} {
		if got := exitCodeFor(status); got != code {
			t.Errorf("status %d → exit %d; want %d", status, got, code)
		}
	}
}
