package caddycognito

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLibraryPackagesDoNotImportCaddy: everything but the root package is
// a Caddy-free library (the thin-module-over-a-library rule of the
// layout): none of them may reach Caddy, even indirectly.
func TestLibraryPackagesDoNotImportCaddy(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Deps}} {{.}}{{end}}`,
		"./internal/...", "./userstore/...", "./invitations/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 3 {
		t.Fatalf("go list named only %d packages:\n%s", len(lines), out)
	}
	for _, line := range lines {
		pkg, deps, _ := strings.Cut(line, " ")
		for _, d := range strings.Fields(deps) {
			if strings.HasPrefix(d, "github.com/caddyserver/caddy") {
				t.Errorf("%s imports %s (directly or through a dependency)", pkg, d)
				break
			}
		}
	}
}
