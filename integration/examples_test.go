package integration

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-cognito/caddy-cognito/integration/internal/caddyproc"
	"github.com/caddy-cognito/caddy-cognito/integration/internal/cognitolocal"
)

// exampleEnv is what the examples read with {env.*}.
var exampleEnv = []string{
	"COGNITO_USER_POOL_ID=eu-west-1_Example1",
	"COGNITO_POOL_ID=local_Example1",
	"COGNITO_CLIENT_ID=exampleclientid123",
	"COGNITO_CLIENT_SECRET=example-secret",
	"SESSION_SECRET=example-session-secret-of-32-characters",
}

// TestExamplesAdapt runs `caddy adapt --validate` on every Caddyfile in
// examples/, with the plugin built by xcaddy, so no example rots.
func TestExamplesAdapt(t *testing.T) {
	bin := needCaddy(t)
	root, err := cognitolocal.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(root, "examples", "*"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range files {
		if !strings.HasSuffix(f, "Caddyfile") {
			continue
		}
		n++
		t.Run(filepath.Base(f), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			out, err := caddyproc.Adapt(ctx, bin, f, exampleEnv...)
			if err != nil {
				t.Fatal(err)
			}
			var cfg struct {
				Apps map[string]json.RawMessage `json:"apps"`
			}
			if err := json.Unmarshal(out, &cfg); err != nil {
				t.Fatalf("adapt printed %q: %v", out, err)
			}
			if _, ok := cfg.Apps["cognito"]; !ok {
				t.Errorf("no cognito app in the adapted config: %s", out)
			}
			if strings.Contains(string(out), `"handler":"cognito_bearer"`) == false && strings.Contains(f, "bearer") {
				t.Errorf("no cognito_bearer handler in the adapted config: %s", out)
			}
		})
	}
	if n == 0 {
		t.Fatal("no Caddyfile in examples/")
	}
}
