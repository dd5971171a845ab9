// Package pgtest starts a real PostgreSQL for tests: Debian's server
// binaries (scripts/install-test-deps.sh installs the `postgresql`
// package) run in a temporary data directory on a free loopback port, one
// server per test binary, a fresh database per caller. Under CI=true a
// missing PostgreSQL fails the test; otherwise the test is skipped with a
// message saying how to install it.
//
// A package that uses it stops the server at the end with
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
//
// It never imports Caddy.
package pgtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Server is a running PostgreSQL owned by the test binary.
type Server struct {
	// Host and Port are where it listens (127.0.0.1 only).
	Host string
	Port int

	dir  string
	cmd  *exec.Cmd
	logf *os.File
	exit chan struct{}
}

var (
	sharedMu  sync.Mutex
	shared    *Server
	sharedErr error
	missing   string
)

// Shared returns the test binary's server, started on first use. When
// PostgreSQL is not installed it fails the test under CI=true and skips
// it otherwise; when it is installed but will not start, it fails.
func Shared(t testing.TB) *Server {
	t.Helper()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared == nil && sharedErr == nil && missing == "" {
		bin, why := findBinaries()
		if bin == "" {
			missing = why
		} else {
			shared, sharedErr = start(bin)
		}
	}
	switch {
	case missing != "":
		msg := "PostgreSQL is not installed: " + missing + " (install with `make install-deps`, which runs scripts/install-test-deps.sh)"
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true and a test dependency is missing: " + msg)
		}
		t.Skip("skipping: " + msg)
	case sharedErr != nil:
		t.Fatalf("PostgreSQL did not start: %v", sharedErr)
	}
	return shared
}

// Start starts a server of its own, outside any test (the benchmark's
// PostgreSQL: integration/cmd/pgserve). Close stops it.
func Start() (*Server, error) {
	bin, why := findBinaries()
	if bin == "" {
		return nil, errors.New("PostgreSQL is not installed: " + why)
	}
	return start(bin)
}

// Close stops a server made by Start and removes its data.
func (s *Server) Close() { s.stop() }

// Main runs the tests and then stops the shared server, if one started.
func Main(m *testing.M) int {
	code := m.Run()
	Stop()
	return code
}

// Stop stops the shared server, if one started: for a TestMain that
// cannot use Main.
func Stop() {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared != nil {
		shared.stop()
		shared = nil
	}
}

// DSN is the URL of database db on the server (trust authentication: the
// server listens on loopback only and lives as long as the tests).
func (s *Server) DSN(db string) string {
	return fmt.Sprintf("postgres://postgres@%s:%d/%s?sslmode=disable", s.Host, s.Port, db)
}

// NewDatabase creates an empty database, dropped when the test ends, and
// returns its DSN.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand does not fail on Linux
	name := "t_" + hex.EncodeToString(b[:])
	if err := s.Exec(context.Background(), "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Exec(context.Background(), "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	return s.DSN(name)
}

// Exec runs one statement as the superuser in the postgres database
// (ALTER DATABASE, pg_terminate_backend: what a test does to a database
// from outside).
func (s *Server) Exec(ctx context.Context, stmt string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(ctx) }() // nothing is left to flush
	_, err = conn.Exec(ctx, stmt)
	return err
}

// findBinaries returns the newest /usr/lib/postgresql/*/bin holding
// initdb and postgres (or $PG_BIN), or "" and why not.
func findBinaries() (string, string) {
	if dir := os.Getenv("PG_BIN"); dir != "" {
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err != nil { //nolint:gosec // G703: the developer's own PG_BIN
			return "", "PG_BIN=" + dir + " has no initdb"
		}
		return dir, ""
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
				return d, ""
			}
		}
	}
	return "", "no /usr/lib/postgresql/*/bin/initdb"
}

func version(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// start runs initdb and postgres. initdb refuses to run as root, so as
// root both run as the `postgres` system user.
func start(bin string) (*Server, error) {
	cred, err := unprivileged()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, err
		}
	}
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", //nolint:gosec // G204: the installed PostgreSQL's initdb
		"-E", "UTF8", "--no-sync", "--no-instructions")
	initdb.Dir = dir
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %w: %s", err, bytes.TrimSpace(out))
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "postgres.log")) //nolint:gosec // G304: in the temporary directory made above
	if err != nil {
		return nil, err
	}
	s := &Server{Host: "127.0.0.1", Port: port, dir: dir, logf: logf, exit: make(chan struct{})}
	// Durability is of no use to a test database: fsync off makes
	// CREATE DATABASE and commits cheap.
	s.cmd = exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-p", strconv.Itoa(port), //nolint:gosec // G204: the installed PostgreSQL's server
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=300")
	s.cmd.Dir = dir
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	// Pdeathsig: a test binary killed mid-run takes its server along.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT}
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = s.cmd.Wait(); close(s.exit) }() // the exit is observed through s.exit
	if err := s.waitReady(30 * time.Second); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// waitReady polls until a connection succeeds, the server exits, or the
// deadline passes.
func (s *Server) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := pgx.Connect(ctx, s.DSN("postgres"))
		cancel()
		if err == nil {
			_ = conn.Close(context.Background()) // only the connection mattered
			return nil
		}
		select {
		case <-s.exit:
			return fmt.Errorf("postgres exited: %s", s.logTail())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres not ready after %s: %w: %s", limit, err, s.logTail())
		}
		time.Sleep(50 * time.Millisecond) // polling a starting server, bounded by deadline
	}
}

func (s *Server) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "postgres.log"))
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(bytes.TrimSpace(b))
}

// stop asks for a fast shutdown, then removes the data directory.
func (s *Server) stop() {
	if s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(syscall.SIGINT) // fast shutdown
		select {
		case <-s.exit:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.exit
		}
	}
	_ = s.logf.Close()
	_ = os.RemoveAll(s.dir)
}

// unprivileged returns the credential to run the server with: nil when
// the tests do not run as root, the postgres user's when they do.
func unprivileged() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, errors.New("running as root and there is no `postgres` user to run initdb as (the postgresql package creates it)")
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("postgres user id %q: %w", u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("postgres group id %q: %w", u.Gid, err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Close() }() // the port is what we wanted
	return l.Addr().(*net.TCPAddr).Port, nil
}
