// Package caddyproc builds Caddy with the plugin the way a user does (xcaddy,
// CGO_ENABLED=0) and runs it as a separate process from a Caddyfile.
package caddyproc

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"sync"
	"syscall"
	"time"

	"github.com/caddy-cognito/caddy-cognito/integration/internal/cognitolocal"
	"github.com/caddy-cognito/caddy-cognito/integration/internal/procgroup"
)

// CaddyVersion is the Caddy release the tests build against.
const CaddyVersion = "v2.11.9"

// BinEnv names an environment variable that, when set, points at an
// already built caddy binary to use instead of building one.
const BinEnv = "CADDY_COGNITO_TEST_CADDY"

// Build runs `go tool xcaddy build` from the integration module with
// CGO_ENABLED=0 (xcaddy's own default) and writes the binary to dir/caddy.
// Output of the build goes to log.
func Build(ctx context.Context, dir string, log io.Writer) (string, error) {
	if bin := os.Getenv(BinEnv); bin != "" {
		return bin, nil
	}
	root, err := cognitolocal.RepoRoot()
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "caddy")
	cmd := exec.CommandContext(ctx, "go", "tool", "xcaddy", "build", CaddyVersion, //nolint:gosec // G204: go tool xcaddy with this module's pinned versions
		"--with", cognitolocal.ModulePath+"@v0.0.0="+root, "--output", out)
	cmd.Dir = filepath.Join(root, "integration")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	var buf bytes.Buffer
	w := io.Writer(&buf)
	if log != nil {
		w = io.MultiWriter(&buf, log)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("xcaddy build: %w\n%s", err, tail(buf.String(), 6000))
	}
	return out, nil
}

// Caddy is a running caddy process.
type Caddy struct {
	Bin       string
	Dir       string
	AdminAddr string
	proc      *procgroup.Group
	out       *syncBuffer
	once      sync.Once
}

// Start writes caddyfile to a fresh directory under dir and runs
// `caddy run --config Caddyfile --adapter caddyfile`. The Caddyfile's
// global options should say `admin {$CADDY_ADMIN}`; Start sets CADDY_ADMIN
// to a free loopback port and waits until GET /config/ there answers with
// a loaded config. env adds environment variables ({$NAME} in the
// Caddyfile).
func Start(ctx context.Context, bin, dir, caddyfile string, env ...string) (*Caddy, error) {
	port, err := cognitolocal.FreePort()
	if err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp(dir, "caddy-run-*")
	if err != nil {
		return nil, err
	}
	cfg := filepath.Join(work, "Caddyfile")
	if err := os.WriteFile(cfg, []byte(caddyfile), 0o600); err != nil {
		return nil, err
	}
	c := &Caddy{Bin: bin, Dir: work, AdminAddr: "127.0.0.1:" + strconv.Itoa(port), out: &syncBuffer{}}
	cmd := exec.Command(bin, "run", "--config", cfg, "--adapter", "caddyfile") //nolint:gosec // G204: the caddy binary this package built
	cmd.Dir = work
	cmd.Env = append(os.Environ(),
		"CADDY_ADMIN="+c.AdminAddr,
		"HOME="+work, "XDG_DATA_HOME="+filepath.Join(work, "data"), "XDG_CONFIG_HOME="+filepath.Join(work, "config"),
	)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout, cmd.Stderr = c.out, c.out
	if c.proc, err = procgroup.Start(cmd); err != nil {
		return nil, err
	}
	if err := c.waitReady(ctx, 30*time.Second); err != nil {
		c.Stop()
		return nil, fmt.Errorf("%w\ncaddy output:\n%s", err, tail(c.Output(), 6000))
	}
	return c, nil
}

func (c *Caddy) waitReady(ctx context.Context, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	url := "http://" + c.AdminAddr + "/config/"
	var last string
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close() // read-only
			var cfg map[string]any
			if resp.StatusCode == http.StatusOK && json.Unmarshal(body, &cfg) == nil && cfg["apps"] != nil {
				return nil
			}
			last = fmt.Sprintf("HTTP %d %s", resp.StatusCode, body)
		} else {
			last = err.Error()
		}
		select {
		case <-c.proc.Done():
			return fmt.Errorf("caddy exited before it was ready (%s)", c.proc.State())
		case <-ctx.Done():
			return fmt.Errorf("caddy admin %s not ready after %v: %s", url, limit, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Output is everything caddy has printed so far.
func (c *Caddy) Output() string { return c.out.String() }

// Stop ends caddy (SIGINT, then SIGKILL after 10s) and removes its directory.
func (c *Caddy) Stop() {
	c.once.Do(func() {
		c.proc.Stop(syscall.SIGINT, 10*time.Second)
		_ = os.RemoveAll(c.Dir) // a leftover temporary directory harms nothing
	})
}

// Load replaces the running config with caddyfile through the admin
// API's POST /load (a graceful reload; {$NAME} placeholders are read from
// caddy's environment, as at Start).
func (c *Caddy) Load(ctx context.Context, caddyfile string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+c.AdminAddr+"/load", strings.NewReader(caddyfile))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "text/caddyfile")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close() // read-only
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST /load: HTTP %d %s", resp.StatusCode, body)
	}
	return nil
}

// Kill ends caddy with SIGKILL, as a crash would (nothing is flushed or
// closed), and waits for it to be gone; Stop then does nothing.
func (c *Caddy) Kill() {
	c.once.Do(func() {
		c.proc.Stop(syscall.SIGKILL, 10*time.Second)
		_ = os.RemoveAll(c.Dir) // a leftover temporary directory harms nothing
	})
}

// Adapt runs `caddy adapt --config file --adapter caddyfile --validate`
// and returns the JSON it printed.
func Adapt(ctx context.Context, bin, file string, env ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, bin, "adapt", "--config", file, "--adapter", "caddyfile", "--validate") //nolint:gosec // G204: the caddy binary this package built
	tmp, err := os.MkdirTemp("", "caddy-adapt-*")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(tmp) }() // a leftover temporary directory harms nothing
	// --validate provisions the config, which opens the store: a relative
	// or {env.DEMO_DATA}-based path lands in the temporary directory, never
	// in the checkout or /.
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "HOME="+tmp, "XDG_DATA_HOME="+tmp, "XDG_CONFIG_HOME="+tmp, "DEMO_DATA="+tmp)
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("caddy adapt %s: %w\n%s", file, err, stderr.String())
	}
	return stdout.Bytes(), nil
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
