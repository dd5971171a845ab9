// Package maildev runs maildev (the npm SMTP server with a REST API,
// installed under testenv/) for tests: a real SMTP server on loopback that
// keeps every message it receives, and `GET /email` on its web port that
// lists them, decoded (subject, addresses, text and HTML parts).
package maildev

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/caddy-cognito/caddy-cognito/integration/internal/cognitolocal"
	"github.com/caddy-cognito/caddy-cognito/integration/internal/procgroup"
)

// shim starts maildev's own command-line entry point unmodified, after
// declaring the global `host`. maildev 2.2.0's SMTP listen callback
// (lib/mailserver.js, `const printHost = host === '::' ? …`) reads that
// undeclared variable and throws a ReferenceError the moment SMTP listens,
// which ends the process: `node node_modules/maildev/bin/maildev …` exits
// right after start. The global gives the expression a value, nothing more.
// process.argv gets the script-name slot commander expects.
const shim = `"use strict";
if (!("host" in globalThis)) globalThis.host = process.env.MAILDEV_IP || "::";
process.argv.splice(1, 0, process.env.MAILDEV_BIN);
require(process.env.MAILDEV_BIN);
`

// Server is a running maildev.
type Server struct {
	SMTPPort int
	WebPort  int
	// URL is its web/REST address, http://127.0.0.1:<web port>.
	URL string
	Dir string // where it keeps the .eml files

	proc *procgroup.Group
	out  *cognitolocal.TailBuffer
	once sync.Once
}

// Bin returns the path of maildev's entry point in testenv/node_modules
// and its version, or an error saying what is missing.
func Bin() (bin, version string, err error) {
	if _, err := exec.LookPath("node"); err != nil {
		return "", "", fmt.Errorf("node is not on PATH: %w", err)
	}
	dir, err := cognitolocal.TestenvDir()
	if err != nil {
		return "", "", err
	}
	bin = filepath.Join(dir, "node_modules", "maildev", "bin", "maildev")
	raw, err := os.ReadFile(filepath.Join(dir, "node_modules", "maildev", "package.json")) //nolint:gosec // G304: maildev's package.json under testenv/node_modules
	if err != nil {
		return "", "", fmt.Errorf("maildev is not installed in %s/node_modules", dir)
	}
	var pkg struct{ Version string }
	if err := json.Unmarshal(raw, &pkg); err != nil {
		return "", "", fmt.Errorf("maildev's package.json: %w", err)
	}
	if _, err := os.Stat(bin); err != nil {
		return "", "", fmt.Errorf("maildev %s has no bin/maildev", pkg.Version)
	}
	return bin, pkg.Version, nil
}

// Start runs maildev on two free loopback ports, keeping messages in dir,
// and waits until both its SMTP port and GET /email answer.
func Start(ctx context.Context, dir string) (*Server, error) {
	bin, _, err := Bin()
	if err != nil {
		return nil, err
	}
	s := &Server{Dir: dir, out: cognitolocal.NewTailBuffer(8 << 10)}
	if s.SMTPPort, err = cognitolocal.FreePort(); err != nil {
		return nil, err
	}
	if s.WebPort, err = cognitolocal.FreePort(); err != nil {
		return nil, err
	}
	s.URL = "http://127.0.0.1:" + strconv.Itoa(s.WebPort)
	cmd := exec.Command("node", "-e", shim, "--", //nolint:gosec // G204: node running a shim of this package
		"--ip", "127.0.0.1", "-s", strconv.Itoa(s.SMTPPort), "-w", strconv.Itoa(s.WebPort), "--mail-directory", dir)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "MAILDEV_BIN="+bin, "MAILDEV_IP=127.0.0.1")
	cmd.Stdout, cmd.Stderr = s.out, s.out
	if s.proc, err = procgroup.Start(cmd); err != nil {
		return nil, err
	}
	if err := s.waitReady(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("%w\nmaildev printed:\n%s", err, s.out.String())
	}
	return s, nil
}

// StartT starts maildev for a test and stops it at cleanup. A missing
// node or maildev skips the test, or fails it under CI=true.
func StartT(t testing.TB) *Server {
	t.Helper()
	if _, _, err := Bin(); err != nil {
		cognitolocal.Missing(t, "%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Start(ctx, t.TempDir())
	if err != nil {
		t.Fatalf("starting maildev: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("maildev printed:\n%s", s.Output())
		}
		s.Close()
	})
	return s
}

func (s *Server) waitReady(ctx context.Context) error {
	for {
		var err error
		var c net.Conn
		if c, err = net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(s.SMTPPort), time.Second); err == nil {
			_ = c.Close() // only a probe
			_, err = s.Messages(ctx)
		}
		if err == nil {
			return nil
		}
		select {
		case <-s.proc.Done():
			return errors.New("maildev: exited before it was ready")
		case <-ctx.Done():
			return fmt.Errorf("maildev: not ready: %w", err)
		case <-time.After(100 * time.Millisecond): // poll interval
		}
	}
}

// Output returns the last lines maildev printed.
func (s *Server) Output() string { return s.out.String() }

// Close stops maildev (its process group).
func (s *Server) Close() {
	s.once.Do(func() {
		if s.proc != nil {
			s.proc.Stop(syscall.SIGTERM, 5*time.Second)
		}
	})
}

// Address is a decoded mailbox.
type Address struct {
	Address string `json:"address"`
	Name    string `json:"name"`
}

// Message is one received message as GET /email lists it.
type Message struct {
	ID      string         `json:"id"`
	Subject string         `json:"subject"`
	From    []Address      `json:"from"`
	To      []Address      `json:"to"`
	Text    string         `json:"text"`
	HTML    string         `json:"html"`
	Headers map[string]any `json:"headers"`
	Time    time.Time      `json:"time"`
	// Envelope is what the SMTP client said in MAIL FROM / RCPT TO.
	Envelope struct {
		From Address   `json:"from"`
		To   []Address `json:"to"`
	} `json:"envelope"`
}

// Header returns a (lower-case) header as maildev decoded it.
func (m Message) Header(name string) string {
	switch v := m.Headers[strings.ToLower(name)].(type) {
	case string:
		return v
	case nil:
		return ""
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

// IsTo reports whether addr (case-insensitive) is among the recipients.
func (m Message) IsTo(addr string) bool {
	for _, a := range m.To {
		if strings.EqualFold(a.Address, addr) {
			return true
		}
	}
	return false
}

// Messages lists what maildev has received, oldest first.
func (s *Server) Messages(ctx context.Context) ([]Message, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/email", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }() // read-only
	body, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("maildev: GET /email: HTTP %d %s", resp.StatusCode, body)
	}
	var list []Message
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("maildev: GET /email: %w: %.200s", err, body)
	}
	return list, nil
}

// To returns the messages received for addr.
func (s *Server) To(ctx context.Context, addr string) ([]Message, error) {
	all, err := s.Messages(ctx)
	if err != nil {
		return nil, err
	}
	var out []Message
	for _, m := range all {
		if m.IsTo(addr) {
			out = append(out, m)
		}
	}
	return out, nil
}

// WaitTo polls until at least n messages for addr have arrived (or ctx
// ends) and returns them, oldest first.
func (s *Server) WaitTo(ctx context.Context, addr string, n int) ([]Message, error) {
	for {
		got, err := s.To(ctx, addr)
		if err == nil && len(got) >= n {
			return got, nil
		}
		select {
		case <-ctx.Done():
			return got, fmt.Errorf("maildev: %d message(s) for %s, want %d (last error: %w)", len(got), addr, n, err)
		case <-s.proc.Done():
			return got, errors.New("maildev: exited")
		case <-time.After(100 * time.Millisecond): // poll interval
		}
	}
}
