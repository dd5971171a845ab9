package integration

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCLIExitCodes: the README promises scripts `0` done, `2` usage, `3` not
// found, `4` conflict, `5` store unavailable and `1` anything else. Each is
// produced here by the real binary, the way a script would meet it.
func TestCLIExitCodes(t *testing.T) {
	bin := needCaddy(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "cognito.db")
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, bytes.Repeat([]byte("this is not a database "), 400), 0o600); err != nil {
		t.Fatal(err)
	}
	blocker := filepath.Join(dir, "a-file")
	if err := os.WriteFile(blocker, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	devFull, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Fatalf("/dev/full (a stdout every write to fails): %v", err)
	}
	defer func() { _ = devFull.Close() }()

	cases := []struct {
		name   string
		args   []string
		stdout *os.File // nil: captured
		want   int
		stderr string // part of the message, when it says what went wrong
	}{
		{"done", []string{"users", "add", "--username", "alice", "--email", "alice@example.com"}, nil, 0, ""},
		{"done (read)", []string{"users", "show", "alice"}, nil, 0, ""},
		{"usage: missing required flag", []string{"users", "add"}, nil, 2, "--username is required"},
		{"usage: unknown flag", []string{"users", "list", "--frobnicate"}, nil, 2, "frobnicate"},
		{"usage: unknown verb", []string{"users", "frobnicate"}, nil, 2, "unknown command"},
		{"usage: no verb", []string{"users"}, nil, 2, "needs a command"},
		{"usage: wrong argument count", []string{"users", "show"}, nil, 2, "usage"},
		{"not found", []string{"users", "show", "nobody"}, nil, 3, ""},
		{"conflict: duplicate username", []string{"users", "add", "--username", "alice"}, nil, 4, ""},
		{"conflict: email in another case", []string{"users", "add", "--username", "bob", "--email", "ALICE@example.com"}, nil, 4, ""},
		{"store unavailable: not a database", []string{"users", "list", "--db", garbage}, nil, 5, garbage},
		{"store unavailable: directory cannot be made", []string{"users", "list", "--db", filepath.Join(blocker, "c.db")}, nil, 5, blocker},
		{"anything else: stdout cannot be written", []string{"users", "list"}, devFull, 1, "no space left"},
	}
	for _, c := range cases {
		args := append([]string{"cognito"}, c.args...)
		if !containsArg(c.args, "--db") {
			args = append(args, "--db", db)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		cmd := exec.CommandContext(ctx, bin, args...) //nolint:gosec // G204: the caddy binary the tests built
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+filepath.Join(dir, "data"), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"))
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if c.stdout != nil {
			cmd.Stdout = c.stdout
		}
		err := cmd.Run()
		cancel()
		code := 0
		var exitErr *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &exitErr):
			code = exitErr.ExitCode()
		default:
			t.Fatalf("%s: running %v: %v", c.name, args, err)
		}
		if code != c.want || !strings.Contains(stderr.String(), c.stderr) {
			t.Errorf("%s: caddy %s\nexit %d, want %d; stderr %q, want it to contain %q", c.name, strings.Join(args, " "), code, c.want, stderr.String(), c.stderr)
		}
		if c.want != 0 && stdout.Len() != 0 {
			t.Errorf("%s: a failure printed %q on stdout; scripts read stdout as the result", c.name, stdout.String())
		}
	}
}

func containsArg(args []string, name string) bool {
	for _, a := range args {
		if a == name || strings.HasPrefix(a, name+"=") {
			return true
		}
	}
	return false
}
