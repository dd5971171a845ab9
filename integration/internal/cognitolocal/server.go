package cognitolocal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/caddy-cognito/caddy-cognito/integration/internal/procgroup"
)

// Options tells Start how to run cognito-local.
type Options struct {
	// Port to listen on (localhost). 0 picks a free one. The issuer of
	// every token is http://localhost:<port>/<poolId>.
	Port int
	// StateDir is the working directory; cognito-local keeps its pools in
	// StateDir/.cognito/. Empty means a fresh temporary directory that
	// Close removes.
	StateDir string
	// Log receives cognito-local's output. Nil keeps the last lines in
	// memory for error messages.
	Log io.Writer
}

// Server is a running cognito-local.
type Server struct {
	// URL is the base URL, http://localhost:<port>, which is also the issuer
	// prefix of its tokens.
	URL  string
	Port int
	Dir  string

	*Client
	proc    *procgroup.Group
	tempDir bool
	out     *TailBuffer
	once    sync.Once
}

// Start runs cognito-local and waits until its API answers.
func Start(ctx context.Context, opts Options) (*Server, error) {
	node, startJS, err := NodePath()
	if err != nil {
		return nil, err
	}
	port := opts.Port
	if port == 0 {
		if port, err = FreePort(); err != nil {
			return nil, err
		}
	}
	s := &Server{Port: port, URL: "http://localhost:" + strconv.Itoa(port), Dir: opts.StateDir, out: NewTailBuffer(8 << 10)}
	if s.Dir == "" {
		if s.Dir, err = os.MkdirTemp("", "cognito-local-*"); err != nil {
			return nil, err
		}
		s.tempDir = true
	} else if err := os.MkdirAll(s.Dir, 0o750); err != nil {
		return nil, err
	}
	// A listener already on the port would answer our readiness probe.
	if c, err := net.DialTimeout("tcp", "localhost:"+strconv.Itoa(port), 200*time.Millisecond); err == nil {
		_ = c.Close() // only a probe
		s.cleanupDir()
		return nil, fmt.Errorf("cognitolocal: port %d is already in use", port)
	}
	cmd := exec.Command(node, startJS) //nolint:gosec // G204: node running cognito-local's start script
	cmd.Dir = s.Dir
	cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(port), "HOST=localhost")
	var w io.Writer = s.out
	if opts.Log != nil {
		w = io.MultiWriter(s.out, opts.Log)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if s.proc, err = procgroup.Start(cmd); err != nil {
		s.cleanupDir()
		return nil, err
	}
	s.Client = NewClient(s.URL)
	if err := s.waitReady(ctx, 30*time.Second); err != nil {
		_ = s.Close() // the readiness error is the one to report
		return nil, fmt.Errorf("%w\ncognito-local output:\n%s", err, s.out.String())
	}
	return s, nil
}

// StartT starts a fresh cognito-local for a test and stops it at cleanup.
// A missing node or cognito-local skips the test, or fails it under CI=true.
func StartT(t testing.TB) *Server {
	t.Helper()
	if _, _, err := NodePath(); err != nil {
		Missing(t, "%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := Start(ctx, Options{})
	if err != nil {
		t.Fatalf("start cognito-local: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func (s *Server) waitReady(ctx context.Context, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for {
		// ListUserPools answers as soon as the API is up.
		err := s.call(ctx, "ListUserPools", map[string]any{"MaxResults": 1}, nil)
		if err == nil {
			return nil
		}
		select {
		case <-s.proc.Done():
			return errors.New("cognitolocal: cognito-local exited before it was ready")
		case <-ctx.Done():
			return fmt.Errorf("cognitolocal: not ready after %v: %w", limit, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Output returns the last lines cognito-local printed.
func (s *Server) Output() string { return s.out.String() }

// Close stops cognito-local (its whole process group) and removes a
// temporary state directory.
func (s *Server) Close() error {
	s.once.Do(func() {
		if s.proc != nil {
			s.proc.Stop(syscall.SIGTERM, 5*time.Second)
		}
		s.cleanupDir()
	})
	return nil
}

func (s *Server) cleanupDir() {
	if s.tempDir {
		_ = os.RemoveAll(s.Dir) // a leftover temporary directory harms nothing
	}
}

// JWKSURL is the pool's key set URL, {issuer}/.well-known/jwks.json.
func (s *Server) JWKSURL(poolID string) string { return s.Issuer(poolID) + "/.well-known/jwks.json" }

// Issuer is the iss claim of the pool's tokens.
func (s *Server) Issuer(poolID string) string { return s.URL + "/" + poolID }

// StateFile is where cognito-local stores a pool.
func (s *Server) StateFile(poolID string) string {
	return filepath.Join(s.Dir, ".cognito", "db", poolID+".json")
}

// FreePort asks the kernel for a free TCP port on loopback.
func FreePort() (int, error) {
	handedMu.Lock()
	defer handedMu.Unlock()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close() // held only to pick the port
		// A port handed out before may still be unbound (its server is
		// starting): the kernel would offer it again, and two servers of
		// one test would race for it.
		if !handed[port] {
			handed[port] = true
			return port, nil
		}
	}
	return 0, errors.New("cognitolocal: no free port that was not handed out before")
}

var (
	handedMu sync.Mutex
	handed   = map[int]bool{}
)

// WaitHTTP polls url until it answers with any status, or ctx ends.
func WaitHTTP(ctx context.Context, url string) error {
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_ = resp.Body.Close() // read-only
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not answering: %w", url, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TailBuffer keeps the last bytes written to it: the end of a stand-in's
// output, for error messages.
type TailBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (b *TailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if over := b.buf.Len() - b.max; over > 0 {
		b.buf.Next(over)
	}
	return len(p), nil
}

// NewTailBuffer keeps the last max bytes.
func NewTailBuffer(max int) *TailBuffer { return &TailBuffer{max: max} }

func (b *TailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
