package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddy-cognito/caddy-cognito/integration/internal/cognitolocal"
)

// rolesCaddyfile: one store, a roles block mapping two Cognito groups and
// a custom attribute to roles, cognito_login for the site and
// cognito_bearer with users mapped for /api/*.
const rolesCaddyfile = `{
	admin {$CADDY_ADMIN}
	auto_https off
	cognito {
		store sqlite @DB@
		pool main {
			issuer @ISSUER@
			client_id @CLIENT_ID@ @WEB_CLIENT@
			client_secret @CLIENT_SECRET@
			domain @DOMAIN@
		}
		roles {
			group @EDITORS@ editor reviewer
			group @ADMINS@ admin
			claim custom:tenant acme tenant-acme
		}
	}
}

http://127.0.0.1:@PORT@ {
	handle /api/* {
		cognito_bearer {
			users mapped
		}
		reverse_proxy @UPSTREAM@
	}
	handle {
		cognito_login {
			secret @SECRET@
			admit any
		}
		reverse_proxy @UPSTREAM@
	}
}
`

// roleUser is what the CLI's `users show --json` says of roles.
type roleUser struct {
	ID            string   `json:"id"`
	Roles         []string `json:"roles"`
	LocalRoles    []string `json:"local_roles"`
	ProviderRoles []string `json:"provider_roles"`
}

// TestRolesFromGroups: the roles block end to end, against cognito-local
// groups and attributes. A sign-in grants the provider roles of the
// user's groups and tenant claim (upstream X-Auth-Roles, CLI and admin
// API, which tell provider from hand grants); a hand grant of one of them
// survives when the group goes; a second sign-in after the group and the
// attribute changed takes the provider roles away; mapped bearer tokens
// add and remove group roles too (and leave the claim's role, which only
// ID tokens decide), writing nothing while the groups stay the same;
// every change is one audit row with source provider.
func TestRolesFromGroups(t *testing.T) {
	s := getStack(t)
	cognitolocal.RequirePatched(t)
	editors, admins := "editors-"+randomHex(t, 3), "admins-"+randomHex(t, 3)
	email := uniqueEmail(t, "dora", "example.com")
	cognitoUser(t, s, email, []string{editors, admins}, map[string]string{"custom:tenant": "acme"})
	port, err := cognitolocal.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	client := newAppClient(t, s, "roles-", fmt.Sprintf("http://127.0.0.1:%d", port))
	ls := newLoginSite(t, s, port, rolesCaddyfile, map[string]string{
		"@ISSUER@": s.issuer, "@CLIENT_ID@": client.ClientID, "@WEB_CLIENT@": s.web.ClientID,
		"@CLIENT_SECRET@": client.ClientSecret, "@DOMAIN@": s.cl.URL, "@EDITORS@": editors, "@ADMINS@": admins,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	show := func() roleUser {
		t.Helper()
		var u roleUser
		if err := json.Unmarshal([]byte(ls.cliOK(t, "users", "show", email, "--json").stdout), &u); err != nil {
			t.Fatal(err)
		}
		return u
	}
	wantRoles := func(what string, got []string, want string) {
		t.Helper()
		if strings.Join(got, ",") != want {
			t.Errorf("%s: %v, want %q", what, got, want)
		}
	}
	upstreamRoles := func(r result) []string {
		t.Helper()
		if r.Upstream == nil {
			t.Fatalf("did not reach the upstream: %s", r)
		}
		return decodeList(t, strings.Join(r.Upstream.authHeaders()["x-auth-roles"], ","))
	}

	// 1. sign-in: both groups and the tenant claim
	c := newWebClient(t)
	ls.signInPlain(t, c, "/page", email).wantSignedIn(t, "/page")
	wantRoles("X-Auth-Roles after the first sign-in", upstreamRoles(c.navigate(ls.base+"/page")), "admin,editor,reviewer,tenant-acme")
	u := show()
	wantRoles("provider_roles", u.ProviderRoles, "admin,editor,reviewer,tenant-acme")
	wantRoles("local_roles", u.LocalRoles, "")
	if text := ls.cliOK(t, "users", "show", email).stdout; !strings.Contains(text, "provider: admin,editor,reviewer,tenant-acme") || !strings.Contains(text, "local: -") {
		t.Errorf("users show does not tell the kinds apart:\n%s", text)
	}

	// 2. a hand grant of editor; then the editors group and the tenant go
	ls.cliOK(t, "users", "grant", email, "editor")
	if err := s.cl.Call(ctx, "AdminRemoveUserFromGroup", map[string]any{"UserPoolId": s.pool.ID, "Username": email, "GroupName": editors}, nil); err != nil {
		t.Fatal(err)
	}
	// cognito-local checks updates (not creation) against the pool schema
	if err := s.cl.Call(ctx, "AddCustomAttributes", map[string]any{"UserPoolId": s.pool.ID,
		"CustomAttributes": []map[string]any{{"Name": "tenant", "AttributeDataType": "String", "Mutable": true}}}, nil); err != nil && !strings.Contains(err.Error(), "exist") {
		t.Fatal(err)
	}
	if err := s.cl.Call(ctx, "AdminUpdateUserAttributes", map[string]any{"UserPoolId": s.pool.ID, "Username": email,
		"UserAttributes": []map[string]string{{"Name": "custom:tenant", "Value": "globex"}}}, nil); err != nil {
		t.Fatal(err)
	}
	ls.signInPlain(t, c, "/page", email).wantSignedIn(t, "/page")
	wantRoles("X-Auth-Roles after the second sign-in", upstreamRoles(c.navigate(ls.base+"/page")), "admin,editor")
	u = show()
	wantRoles("provider_roles after the group went", u.ProviderRoles, "admin")
	wantRoles("local_roles after the group went (the hand grant)", u.LocalRoles, "editor")

	// 3. mapped bearer tokens: the group is back, then admins goes
	if err := s.cl.AdminAddUserToGroup(ctx, s.pool.ID, email, editors); err != nil {
		t.Fatal(err)
	}
	api := s.at(ls.base)
	tok := s.login(t, s.web.ClientID, email).AccessToken
	wantRoles("X-Auth-Roles on a bearer token with both groups", upstreamRoles(api.do(t, "/api/x", tok)), "admin,editor,reviewer")
	before := len(providerRoleEvents(t, ls, u.ID))
	for i := 0; i < 3; i++ {
		wantRoles("the same token again", upstreamRoles(api.do(t, "/api/x", tok)), "admin,editor,reviewer")
	}
	if n := len(providerRoleEvents(t, ls, u.ID)); n != before {
		t.Errorf("unchanged groups wrote %d more audit rows", n-before)
	}
	if err := s.cl.Call(ctx, "AdminRemoveUserFromGroup", map[string]any{"UserPoolId": s.pool.ID, "Username": email, "GroupName": admins}, nil); err != nil {
		t.Fatal(err)
	}
	tok = s.login(t, s.web.ClientID, email).AccessToken
	wantRoles("X-Auth-Roles once admins went", upstreamRoles(api.do(t, "/api/x", tok)), "editor,reviewer")
	u = show()
	wantRoles("provider_roles at the end", u.ProviderRoles, "editor,reviewer")
	wantRoles("local_roles at the end", u.LocalRoles, "editor")

	// 4. the admin API's user JSON has both lists too
	status, body := (&mappedSite{caddy: ls.caddy}).admin(t, http.MethodGet, "/cognito/users/"+url.PathEscape(u.ID), nil)
	var au roleUser
	if status != http.StatusOK || json.Unmarshal(body, &au) != nil || strings.Join(au.ProviderRoles, ",") != "editor,reviewer" || strings.Join(au.LocalRoles, ",") != "editor" {
		t.Errorf("GET /cognito/users/%s: HTTP %d %s", u.ID, status, body)
	}

	// 5. one audit row per change, oldest first
	want := []string{
		"role.grant admin,editor,reviewer,tenant-acme",
		"role.revoke editor,reviewer,tenant-acme",
		"role.grant editor,reviewer",
		"role.revoke admin",
	}
	if got := providerRoleEvents(t, ls, u.ID); strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Errorf("provider role audit rows:\n got %q\nwant %q", got, want)
	}
}

// providerRoleEvents lists the audit rows about target with source
// provider, oldest first, as "<action> <roles>"; their actor must be the
// pool's provider.
func providerRoleEvents(t *testing.T, ls *loginSite, target string) []string {
	t.Helper()
	q := url.Values{"limit": {"1000"}, "target": {target}}
	status, body := (&mappedSite{caddy: ls.caddy}).admin(t, http.MethodGet, "/cognito/audit?"+q.Encode(), nil)
	var events []struct{ Action, Actor, Detail string }
	if status != http.StatusOK || json.Unmarshal(body, &events) != nil {
		t.Fatalf("GET /cognito/audit: HTTP %d %s", status, body)
	}
	var out []string
	for i := len(events) - 1; i >= 0; i-- {
		e := events[i]
		var d struct {
			Roles  []string
			Source string
		}
		if json.Unmarshal([]byte(e.Detail), &d) != nil || d.Source != "provider" {
			continue
		}
		if e.Actor != "provider:main" {
			t.Errorf("audit row %s by %q, want provider:main", e.Action, e.Actor)
		}
		out = append(out, e.Action+" "+strings.Join(d.Roles, ","))
	}
	return out
}
