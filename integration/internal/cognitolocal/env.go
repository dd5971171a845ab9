// Package cognitolocal runs cognito-local (the npm Cognito user-pool
// emulator installed under testenv/) for tests and tools, talks to its
// Cognito JSON API, and mints tokens with its signing key for claims it
// cannot produce itself.
package cognitolocal

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// ModulePath is the root module of the repository.
const ModulePath = "github.com/caddy-cognito/caddy-cognito"

// RepoRoot walks up from the working directory to the directory whose go.mod
// declares ModulePath.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if f, err := os.Open(filepath.Join(dir, "go.mod")); err == nil { //nolint:gosec // G304: go.mod in a parent of the working directory
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				line := strings.TrimSpace(sc.Text())
				if line == "module "+ModulePath {
					_ = f.Close() // read-only
					return dir, nil
				}
			}
			_ = f.Close() // read-only
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("cognitolocal: no parent directory holds the " + ModulePath + " go.mod")
		}
		dir = parent
	}
}

// TestenvDir is <repo>/testenv, where package.json installs the stand-ins.
func TestenvDir() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "testenv"), nil
}

// InCI reports whether the tests run under CI=true, where a missing
// stand-in is a failure and never a skip.
func InCI() bool { return os.Getenv("CI") == "true" }

// Missing ends a test whose stand-in is absent: t.Fatal under CI=true, t.Skip
// otherwise, with a message that says how to install it.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...) + " (install with `make install-deps`)"
	if InCI() {
		t.Fatal("CI=true and a test stand-in is missing: " + msg)
	}
	t.Skip("skipping: " + msg)
}

// NodePath finds node and the cognito-local entry point.
func NodePath() (node, startJS string, err error) {
	node, err = exec.LookPath("node")
	if err != nil {
		return "", "", fmt.Errorf("node is not on PATH: %w", err)
	}
	dir, err := TestenvDir()
	if err != nil {
		return "", "", err
	}
	startJS = filepath.Join(dir, "node_modules", "cognito-local", "lib", "bin", "start.js")
	if _, err := os.Stat(startJS); err != nil {
		return "", "", fmt.Errorf("cognito-local is not installed in %s/node_modules", dir)
	}
	return node, startJS, nil
}

// NodeAndTestenv returns node's path and testenv/ for a test that runs a
// script of testenv/ with node, or ends the test (Missing) without node.
func NodeAndTestenv(t testing.TB) (node, testenv string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		Missing(t, "node: %v", err)
	}
	if testenv, err = TestenvDir(); err != nil {
		t.Fatal(err)
	}
	return node, testenv
}

// Chromium returns the path of Debian's chromium, or an error when absent.
func Chromium() (string, error) {
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("chromium is not installed (apt-get install chromium)")
}
