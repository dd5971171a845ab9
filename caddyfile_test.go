package caddycognito

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddytest"
)

// update rewrites the JSON half of the fixtures from the adapter's output
// (go test -run TestCaddyfileAdapt -update); review the diff before committing.
var update = flag.Bool("update", false, "rewrite Caddyfile adapt fixtures")

// TestCaddyfileAdapt runs the fixtures in testdata/caddyfile_adapt: a
// Caddyfile, a line of ten dashes, then either the exact JSON it must adapt
// to, or `error: <text>` that the adapter's error must contain.
func TestCaddyfileAdapt(t *testing.T) {
	files, err := filepath.Glob("testdata/caddyfile_adapt/*.caddyfiletest")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f) //nolint:gosec // G304: a fixture path from filepath.Glob over testdata
			if err != nil {
				t.Fatal(err)
			}
			parts := strings.Split(string(data), "----------")
			if len(parts) != 2 {
				t.Fatalf("fixture needs one ---------- separator")
			}
			input, expected := strings.TrimSpace(parts[0])+"\n", strings.TrimSpace(parts[1])
			if want, ok := strings.CutPrefix(expected, "error:"); ok {
				_, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(input), nil)
				if err == nil || !strings.Contains(err.Error(), strings.TrimSpace(want)) {
					t.Fatalf("adapt error = %v; want one containing %q", err, strings.TrimSpace(want))
				}
				return
			}
			if *update {
				out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(input), nil)
				if err != nil {
					t.Fatal(err)
				}
				var buf bytes.Buffer
				_ = json.Indent(&buf, out, "", "\t")
				expected = buf.String()
				if err := os.WriteFile(f, []byte(strings.TrimSpace(parts[0])+"\n----------\n"+expected+"\n"), 0o600); err != nil { //nolint:gosec // G703: a fixture path from filepath.Glob over testdata; 0o600 applies only to a new file
					t.Fatal(err)
				}
			}
			if !caddytest.CompareAdapt(t, f, input, "caddyfile", expected) {
				t.Fatal("adapted JSON differs")
			}
		})
	}
}
