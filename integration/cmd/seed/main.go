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
package main

import (
	"context"
	"flag"
	"fmt"
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
	flag.Parse()

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
	var gs []string
	for _, g := range strings.Split(*groups, ",") {
		if g = strings.TrimSpace(g); g != "" {
			gs = append(gs, g)
		}
	}
	seeded, err := cognitolocal.Seed(ctx, c, cognitolocal.SeedSpec{
		PoolName: *pool, ClientName: *client,
		Users: []cognitolocal.SeedUser{{Email: *email, Password: *password, Groups: gs}},
	})
	if err != nil {
		fail("seeding: %v", err)
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

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "seed: "+format+"\n", args...)
	os.Exit(1)
}
