package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-cognito/caddy-cognito/integration/internal/caddyproc"
	"github.com/caddy-cognito/caddy-cognito/integration/internal/cognitolocal"
)

// TestMatchersAfterBearer runs examples/per-path-rules.Caddyfile, as a
// user copies it, against cognito-local (only the pool, the site address
// and the upstream are swapped for the test's): Caddy's `expression`,
// `header` and `path` matchers, placed after cognito_bearer, decide per
// path from {http.auth.user.groups} and X-Auth-Groups.
func TestMatchersAfterBearer(t *testing.T) {
	s := getStack(t)
	bin := needCaddy(t)
	root, err := cognitolocal.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(root, "examples", "per-path-rules.Caddyfile")) //nolint:gosec // G304: the repository's own example
	if err != nil {
		t.Fatal(err)
	}
	port, err := cognitolocal.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	for _, r := range [][2]string{
		{"{\n\tcognito {", "{\n\tadmin {$CADDY_ADMIN}\n\tauto_https off\n\tcognito {"},
		{"region eu-west-1\n\t\t\tuser_pool_id {env.COGNITO_USER_POOL_ID}", "issuer " + s.issuer},
		{"{env.COGNITO_CLIENT_ID}", s.web.ClientID},
		{"api.example.com {", fmt.Sprintf("http://127.0.0.1:%d {", port)},
		{"reverse_proxy localhost:9000", "reverse_proxy " + s.upstream.URL},
	} {
		if !strings.Contains(text, r[0]) {
			t.Fatalf("the example no longer contains %q; update this test with it", r[0])
		}
		text = strings.Replace(text, r[0], r[1], 1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := caddyproc.Start(ctx, bin, t.TempDir(), text)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	site := s.at(fmt.Sprintf("http://127.0.0.1:%d", port))

	// Users of this test's own, rather than the stack's shared alice and
	// bob, whose Cognito state other tests of the package may change.
	adminEmail, plainEmail := uniqueEmail(t, "matcher-admin", "example.com"), uniqueEmail(t, "matcher-nobody", "example.com")
	cognitoUser(t, s, adminEmail, []string{"admins", "staff"}, nil)
	cognitoUser(t, s, plainEmail, nil, nil)
	admin := s.login(t, s.web.ClientID, adminEmail).AccessToken  // groups admins, staff
	nobody := s.login(t, s.web.ClientID, plainEmail).AccessToken // no group
	for _, c := range []struct {
		who, token, path string
		status           int
		body             string
		spoof            []string
	}{
		{"alice", admin, "/admin/x", 200, "", nil},
		{"alice", admin, "/reports/x", 200, "", nil},
		{"alice", admin, "/other", 200, "", nil},
		{"bob", nobody, "/admin/x", 403, "admins only", nil},
		{"bob", nobody, "/reports/x", 403, "staff only", nil},
		{"bob", nobody, "/other", 200, "", nil},
		// a client's own X-Auth-Groups is removed before the matchers run
		{"bob spoofing X-Auth-Groups", nobody, "/reports/x", 403, "staff only", []string{"X-Auth-Groups", "staff"}},
		{"no token", "", "/admin/x", 401, "", nil},
		{"no token", "", "/other", 401, "", nil},
	} {
		r := site.do(t, c.path, c.token, c.spoof...)
		if r.Status != c.status || (c.body != "" && string(r.Body) != c.body) {
			t.Errorf("%s GET %s: %s; want %d %q", c.who, c.path, r, c.status, c.body)
		}
		if (r.Upstream != nil) != (c.status == 200) {
			t.Errorf("%s GET %s: reached the upstream %v, want %v", c.who, c.path, r.Upstream != nil, c.status == 200)
		}
	}
}

// at is the stack's pool, clients and upstream with requests going to
// another Caddy at base.
func (s *stack) at(base string) *stack {
	return &stack{cl: s.cl, minter: s.minter, pool: s.pool, web: s.web, machine: s.machine, stranger: s.stranger,
		users: s.users, issuer: s.issuer, upstream: s.upstream, base: base}
}
