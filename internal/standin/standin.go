// Package standin starts and reaches the real stand-ins the unit tests
// run against (Node's oidc-provider, cognito-local, a fake token endpoint),
// failing under CI=true when one is missing instead of skipping.
package standin

import (
	"context"

	"bytes"
	"encoding/json"
	"fmt"
	"github.com/caddy-cognito/caddy-cognito/internal/jose"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TokenEndpoint answers token requests with whatever respond builds and
// records the last request.
type TokenEndpoint struct {
	*httptest.Server
	mu      sync.Mutex
	auth    string
	form    url.Values
	respond func(form url.Values) (int, any)
}

// NewTokenEndpoint starts a TokenEndpoint, stopped when the test ends.
func NewTokenEndpoint(t *testing.T, respond func(url.Values) (int, any)) *TokenEndpoint {
	f := &TokenEndpoint{respond: respond}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm() // a bad form reaches respond as an empty PostForm
		f.mu.Lock()
		f.auth, f.form = r.Header.Get("Authorization"), r.PostForm
		f.mu.Unlock()
		status, body := f.respond(r.PostForm)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(body) // a write error is the client's problem
	}))
	t.Cleanup(f.Close)
	return f
}

// Last returns the Authorization header and form of the last request.
func (f *TokenEndpoint) Last() (string, url.Values) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.auth, f.form
}

// Missing fails under CI=true (where stand-ins must be installed)
// and skips otherwise.
func Missing(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...) + " (install with `make install-deps`)"
	if os.Getenv("CI") == "true" {
		t.Fatal("CI=true and a test stand-in is missing: " + msg)
	}
	t.Skip("skipping: " + msg)
}

// NodeScript returns node and the absolute path of a script under the
// module's testenv/, wherever the test runs from.
func NodeScript(t *testing.T, rel string) (node, script string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		Missing(t, "node is not on PATH")
	}
	script = filepath.Join(moduleRoot(t), "testenv", rel)
	if _, err := os.Stat(script); err != nil {
		Missing(t, "%s is not installed", script)
	}
	return node, script
}

// FreeLoopbackPort returns a TCP port free on 127.0.0.1 just now.
func FreeLoopbackPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }() // held only to pick the port
	return l.Addr().(*net.TCPAddr).Port
}

// StartNode runs node script in a fresh working directory with env, waits
// until readyURL answers, and stops the process group at cleanup.
func StartNode(t *testing.T, node, script string, env []string, readyURL string) {
	t.Helper()
	var out bytes.Buffer
	var outMu sync.Mutex
	cmd := exec.Command(node, script) //nolint:gosec // G204: the test's node binary running a stand-in script of this repository
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), env...)
	w := writerFunc(func(p []byte) (int, error) { outMu.Lock(); defer outMu.Unlock(); return out.Write(p) })
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	// How it ended shows in its output; an exit after our signal is expected.
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) // the group may have exited already
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // as above
			<-done
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(readyURL) //nolint:gosec // G107: the stand-in's own loopback URL
		if err == nil {
			_ = resp.Body.Close() // only the answer matters
			return
		}
		select {
		case <-done:
			outMu.Lock()
			defer outMu.Unlock()
			t.Fatalf("%s exited before it was ready:\n%s", filepath.Base(script), out.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			outMu.Lock()
			defer outMu.Unlock()
			t.Fatalf("%s not ready after 30s: %v\n%s", filepath.Base(script), err, out.String())
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// moduleRoot is the directory of the plugin's go.mod, above the test's
// working directory.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod")) //nolint:gosec // G304: go.mod in a parent of the working directory
		if err == nil && bytes.Contains(b, []byte("module github.com/caddy-cognito/caddy-cognito\n")) {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("the caddy-cognito module root is not above the working directory")
		}
		dir = parent
	}
}

// FormAction finds the action of a page's POST form: how the tests click
// through the stand-ins' sign-in pages.
var FormAction = regexp.MustCompile(`<form[^>]*action="([^"]+)"[^>]*method="post"`)

// KeySet returns a fresh, unshared key set on a stand-in issuer's JWKS,
// after its first fetch; it is destroyed when the test ends.
func KeySet(tb testing.TB, jwksURL string, opts jose.KeySetOptions) *jose.KeySet {
	tb.Helper()
	ks := jose.NewKeySet(jwksURL, opts)
	tb.Cleanup(func() { _ = ks.Destruct() }) // always nil: it is a caddy.Destructor
	deadline := time.Now().Add(5 * time.Second)
	for !ks.WaitFirstFetch(context.Background()) {
		if time.Now().After(deadline) {
			tb.Fatal("first JWKS fetch did not finish")
		}
	}
	return ks
}
