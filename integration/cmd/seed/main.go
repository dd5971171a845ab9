// Command seed creates (or finds, when it already exists) a user pool, an
// app client, a user with a permanent password and its groups in a running
// cognito-local, and prints shell variables describing them:
//
//	COGNITO_URL, COGNITO_ISSUER, COGNITO_POOL_ID, COGNITO_CLIENT_ID,
//	COGNITO_USERNAME, COGNITO_SUB, COGNITO_EMAIL, COGNITO_PASSWORD
//
// and, with -token, COGNITO_ACCESS_TOKEN and COGNITO_ID_TOKEN from a
// USER_PASSWORD_AUTH sign-in. `eval "$(go run ./cmd/seed)"` loads them.
// scripts/demo.sh and scripts/bench-wrk.sh use it.
//
// For browser sign-in (cognito_login) the app client needs a secret, the
// code flow and its callback and sign-out URLs:
//
//	seed -client web-app -secret \
//		-callback http://localhost:8081/auth/callback \
//		-logout http://localhost:8081/auth/logout/done
//
// also prints COGNITO_CLIENT_SECRET. A client that already exists gets the
// given callback and sign-out URLs (they replace its old ones); one that
// exists without a secret cannot get one, so -secret then fails: use
// another -client name. Without these flags nothing changes: a public
// client for USER_PASSWORD_AUTH, as before.
package main

import (
	"context"
	"flag"
	"fmt"
	neturl "net/url"
	"os"
	"strings"
	"time"

	"github.com/caddy-cognito/caddy-cognito/integration/internal/cognitolocal"
)

func main() {
	url := flag.String("url", "http://localhost:9229", "cognito-local base URL (also the issuer prefix)")
	pool := flag.String("pool", "demo", "user pool name")
	client := flag.String("client", "demo-app", "app client name")
	email := flag.String("user", "demo@example.com", "user email (the sign-in name)")
	password := flag.String("password", "Demo-Passw0rd!", "the user's permanent password")
	groups := flag.String("groups", "admins", "comma-separated groups for the user")
	token := flag.Bool("token", false, "also sign in and print COGNITO_ACCESS_TOKEN and COGNITO_ID_TOKEN")
	wait := flag.Duration("wait", 30*time.Second, "how long to wait for cognito-local to answer")
	secret := flag.Bool("secret", false, "give a new app client a secret and print COGNITO_CLIENT_SECRET (browser sign-in)")
	var callbacks, logouts []string
	flag.Func("callback", "a callback URL of the app client (repeatable or comma-separated); enables the code flow", urlList(&callbacks))
	flag.Func("logout", "a sign-out URL of the app client (repeatable or comma-separated)", urlList(&logouts))
	scopes := flag.String("scopes", "openid,email,profile", "comma-separated OAuth scopes of the code flow (with -callback)")
	flag.Parse()
	if flag.NArg() > 0 {
		fail("unexpected arguments %q", flag.Args())
	}
	if len(logouts) > 0 && len(callbacks) == 0 {
		fail("-logout needs -callback (the code flow)")
	}

	ctx, cancel := context.WithTimeout(context.Background(), *wait+30*time.Second)
	defer cancel()
	c := cognitolocal.NewClient(*url)
	deadline := time.Now().Add(*wait)
	for {
		if _, err := c.ListUserPools(ctx); err == nil {
			break
		} else if time.Now().After(deadline) {
			fail("cognito-local at %s does not answer: %v", *url, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	gs := splitList(*groups)
	spec := cognitolocal.SeedSpec{
		PoolName: *pool, ClientName: *client, ClientSecret: *secret,
		Users: []cognitolocal.SeedUser{{Email: *email, Password: *password, Groups: gs}},
	}
	if len(callbacks) > 0 {
		spec.ClientOptions = cognitolocal.ClientOptions{
			CallbackURLs:      callbacks,
			LogoutURLs:        logouts,
			AllowedOAuthFlows: []string{"code"},
			OAuthScopes:       splitList(*scopes),
		}
	}
	seeded, err := cognitolocal.Seed(ctx, c, spec)
	if err != nil {
		fail("seeding: %v", err)
	}
	if *secret && seeded.Client.ClientSecret == "" {
		fail("app client %q (%s) of pool %q exists without a secret, and a secret cannot be added later: choose another -client name",
			*client, seeded.Client.ClientID, *pool)
	}
	if len(callbacks) > 0 {
		// Seed reuses a client of that name as it is: give it these URLs.
		if err := updateOAuth(ctx, c, seeded.Client, spec.ClientOptions); err != nil {
			fail("setting the callback URLs of app client %q: %v", *client, err)
		}
	}
	u := seeded.Users[*email]
	vars := [][2]string{
		{"COGNITO_URL", *url},
		{"COGNITO_ISSUER", strings.TrimRight(*url, "/") + "/" + seeded.Pool.ID},
		{"COGNITO_POOL_ID", seeded.Pool.ID},
		{"COGNITO_CLIENT_ID", seeded.Client.ClientID},
		{"COGNITO_USERNAME", u.Username},
		{"COGNITO_SUB", u.Sub},
		{"COGNITO_EMAIL", *email},
		{"COGNITO_PASSWORD", *password},
	}
	if *secret {
		vars = append(vars, [2]string{"COGNITO_CLIENT_SECRET", seeded.Client.ClientSecret})
	}
	if *token {
		t, err := c.InitiateAuth(ctx, seeded.Client.ClientID, *email, *password)
		if err != nil {
			fail("sign-in: %v", err)
		}
		vars = append(vars, [2]string{"COGNITO_ACCESS_TOKEN", t.AccessToken}, [2]string{"COGNITO_ID_TOKEN", t.IDToken})
	}
	for _, v := range vars {
		fmt.Printf("export %s='%s'\n", v[0], strings.ReplaceAll(v[1], "'", `'\''`))
	}
}

// updateOAuth sets an app client's code-flow settings (UpdateUserPoolClient
// resets what it is not given, so the sign-in flows are sent again).
func updateOAuth(ctx context.Context, c *cognitolocal.Client, cl cognitolocal.AppClient, o cognitolocal.ClientOptions) error {
	in := map[string]any{
		"UserPoolId":                      cl.UserPoolID,
		"ClientId":                        cl.ClientID,
		"ClientName":                      cl.ClientName,
		"ExplicitAuthFlows":               []string{"ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"},
		"CallbackURLs":                    o.CallbackURLs,
		"AllowedOAuthFlows":               o.AllowedOAuthFlows,
		"AllowedOAuthFlowsUserPoolClient": true,
		"AllowedOAuthScopes":              o.OAuthScopes,
	}
	if len(o.LogoutURLs) > 0 {
		in["LogoutURLs"] = o.LogoutURLs
	}
	return c.Call(ctx, "UpdateUserPoolClient", in, nil)
}

// urlList is a flag that collects absolute URLs, repeated or comma-separated.
func urlList(dst *[]string) func(string) error {
	return func(v string) error {
		for _, u := range splitList(v) {
			p, err := neturl.Parse(u)
			if err != nil || p.Scheme == "" || p.Host == "" {
				return fmt.Errorf("%q is not an absolute URL", u)
			}
			*dst = append(*dst, u)
		}
		return nil
	}
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "seed: "+format+"\n", args...)
	os.Exit(1)
}
