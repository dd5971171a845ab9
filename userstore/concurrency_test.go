package userstore

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Child processes are this test binary re-executed with USERSTORE_HELPER set.
const (
	helperEnv   = "USERSTORE_HELPER"
	helperDBEnv = "USERSTORE_HELPER_DB"
)

func helperCmd(t *testing.T, role, path string) *exec.Cmd {
	t.Helper()
	name := map[string]string{"writer": "TestHelperWriter", "open": "TestHelperOpen"}[role]
	cmd := exec.Command(os.Args[0], "-test.run=^"+name+"$", "-test.count=1") //nolint:gosec // G204: this test binary, re-executed
	cmd.Env = append(os.Environ(), helperEnv+"="+role, helperDBEnv+"="+path)
	return cmd
}

// TestHelperWriter is not a test: it is the child process of
// TestKillWriterMidStorm. Eight goroutines write users (create, grant two
// roles, link an identity) forever and print "committed N" after each commit.
func TestHelperWriter(t *testing.T) {
	if os.Getenv(helperEnv) != "writer" {
		t.Skip("helper process")
	}
	s, err := Open(context.Background(), Options{Path: os.Getenv(helperDBEnv)})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	var n atomic.Int64
	var mu sync.Mutex
	commit := func() {
		c := n.Add(1)
		mu.Lock()
		_, _ = fmt.Fprintf(os.Stdout, "committed %d\n", c) // if stdout is gone, the parent stopped reading
		mu.Unlock()
	}
	for g := 0; g < 8; g++ {
		go func() {
			ctx := context.Background()
			for i := 0; ; i++ {
				u, err := s.CreateUser(ctx, "writer", NewUser{Username: fmt.Sprintf("g%d-%d-%d", g, os.Getpid(), i),
					Email: fmt.Sprintf("G%d.%d@Example.com", g, i)})
				if err != nil {
					fmt.Fprintln(os.Stderr, "create:", err)
					os.Exit(3)
				}
				commit()
				if err := s.GrantRoles(ctx, "writer", u.ID, "reader", "writer"); err != nil {
					fmt.Fprintln(os.Stderr, "grant:", err)
					os.Exit(3)
				}
				commit()
				if err := s.LinkIdentity(ctx, "writer", u.ID, "https://iss", u.ID+"-sub", ""); err != nil {
					fmt.Fprintln(os.Stderr, "link:", err)
					os.Exit(3)
				}
				commit()
			}
		}()
	}
	select {} // until killed
}

// TestHelperOpen is not a test: child of TestMigrationRaceProcesses.
func TestHelperOpen(t *testing.T) {
	if os.Getenv(helperEnv) != "open" {
		t.Skip("helper process")
	}
	s, err := Open(context.Background(), Options{Path: os.Getenv(helperDBEnv)})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	if err := s.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "close:", err)
		os.Exit(2)
	}
	fmt.Println("opened")
	os.Exit(0)
}

func TestKillWriterMidStorm(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.db")
	cmd := helperCmd(t, "writer", path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	const want = 600 // commits seen before the kill
	last := 0
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if n, ok := strings.CutPrefix(sc.Text(), "committed "); ok {
			last, _ = strconv.Atoi(n)
			if last >= want {
				break
			}
		}
	}
	// Kill while the eight goroutines are still writing.
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	if last < want {
		t.Fatalf("child stopped after %d commits: %s", last, stderr.String())
	}
	t.Logf("killed writer after %d commits (%v)", last, time.Since(start))

	s := openTest(t, path)
	ctx := context.Background()
	var ic string
	if err := s.db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&ic); err != nil || ic != "ok" {
		t.Fatalf("integrity_check = %q, %v", ic, err)
	}
	func() {
		rows, err := s.db.QueryContext(ctx, "PRAGMA foreign_key_check")
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = rows.Close() }() // nothing was read that a close error would undo
		if rows.Next() {
			t.Fatal("foreign_key_check reports orphans")
		}
	}()
	count := func(q string) int {
		var n int
		if err := s.db.QueryRowContext(ctx, q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	users := count(`SELECT count(*) FROM users`)
	granted := count(`SELECT count(DISTINCT user_id) FROM user_roles`)
	linked := count(`SELECT count(*) FROM identities`)
	if commits := users + granted + linked; commits < last {
		t.Fatalf("%d commits acknowledged, %d found (users %d, grants %d, links %d)", last, commits, users, granted, linked)
	}
	for q, wantZero := range map[string]bool{
		// every row has the audit row of the transaction that wrote it, and back
		`SELECT count(*) FROM users u WHERE NOT EXISTS (SELECT 1 FROM audit_log a WHERE a.action = 'user.create' AND a.target = u.id)`:                                         true,
		`SELECT count(*) FROM audit_log a WHERE a.action = 'user.create' AND NOT EXISTS (SELECT 1 FROM users u WHERE u.id = a.target)`:                                         true,
		`SELECT count(*) FROM (SELECT user_id FROM user_roles GROUP BY user_id HAVING count(*) <> 2) x`:                                                                        true,
		`SELECT count(*) FROM (SELECT DISTINCT user_id FROM user_roles) r WHERE NOT EXISTS (SELECT 1 FROM audit_log a WHERE a.action = 'role.grant' AND a.target = r.user_id)`: true,
		`SELECT count(*) FROM identities i WHERE NOT EXISTS (SELECT 1 FROM audit_log a WHERE a.action = 'identity.link' AND a.target = i.user_id)`:                             true,
		`SELECT count(*) FROM users WHERE username = '' OR created_at = '' OR updated_at = '' OR email_lower <> lower(email)`:                                                  true,
	} {
		if n := count(q); (n == 0) != wantZero {
			t.Errorf("%d rows: %s", n, q)
		}
	}
	if got := count(`SELECT count(*) FROM audit_log WHERE action = 'role.grant'`); got != granted {
		t.Errorf("%d role.grant rows for %d users with roles", got, granted)
	}
	// And the store still works.
	mustUser(t, s, NewUser{Username: "after-crash"})
}

func TestConcurrentWriters200(t *testing.T) {
	bothBackends(t, func(t *testing.T) {
		path := newLocation(t)
		// Two Stores on one file: each serialises its own goroutines, and the two
		// pools contend through SQLite's lock and busy_timeout like two processes.
		stores := []*Store{openTest(t, path), openTest(t, path)}
		const writers = 200
		ctx := context.Background()
		startGate := make(chan struct{})
		errs := make(chan error, writers)
		var wg sync.WaitGroup
		for i := 0; i < writers; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-startGate
				s := stores[i%2]
				u, err := s.CreateUser(ctx, "w", NewUser{Username: fmt.Sprintf("user%03d", i), Email: fmt.Sprintf("U%03d@x.io", i)})
				if err == nil {
					err = s.GrantRoles(ctx, "w", u.ID, "r1", fmt.Sprintf("r%d", i%7+2))
				}
				if err == nil {
					_, err = s.LookupIdentity(ctx, "iss", u.ID) // a read in the storm
					if errors.Is(err, ErrNotFound) {
						err = nil
					}
				}
				errs <- err
			}()
		}
		start := time.Now()
		close(startGate)
		wg.Wait()
		close(errs)
		elapsed := time.Since(start)
		for err := range errs {
			if err != nil {
				t.Errorf("writer: %v", err) // includes any "database is locked"
			}
		}
		us, err := stores[0].ListUsers(ctx, UserFilter{Limit: 1000})
		if err != nil || len(us) != writers {
			t.Fatalf("ListUsers = %d, %v", len(us), err)
		}
		for _, u := range us {
			if len(u.Roles) != 2 {
				t.Fatalf("%s has roles %v", u.Username, u.Roles)
			}
		}
		es, _ := stores[1].Audit(ctx, 1000)
		if c, g := countAction(es, ActionUserCreate), countAction(es, ActionRoleGrant); c != writers || g != writers {
			t.Fatalf("audit: %d creates, %d grants", c, g)
		}
		t.Logf("%d writers x 2 transactions on 2 pools: %v", writers, elapsed)
	})
}

// Two Opens race on a fresh file. A is stopped while it holds the migration
// lock; B is started then, reads version 0 (A has not committed), and goes for
// the lock. When A commits, B must re-read the version under the lock and do
// nothing.
func TestMigrationRunsOnceUnderRace(t *testing.T) {
	bothBackends(t, func(t *testing.T) {
		path := newLocation(t)
		ctx := context.Background()
		var (
			bBefore, bAfter = -1, -1
			bAboutToLock    = make(chan struct{})
			bDone           = make(chan struct{})
			sB              *Store
			errB            error
		)
		hooksB := &testHooks{
			beforeLock: func(v int) { bBefore = v; close(bAboutToLock) },
			afterLock:  func(v int) { bAfter = v },
		}
		hooksA := &testHooks{afterLock: func(int) {
			go func() {
				defer close(bDone)
				sB, errB = Open(ctx, withHooks(optionsFor(path), hooksB))
			}()
			<-bAboutToLock
		}}
		sA, err := Open(ctx, withHooks(optionsFor(path), hooksA))
		if err != nil {
			t.Fatal(err)
		}
		defer closeOK(t, sA)
		<-bDone
		if errB != nil {
			t.Fatalf("second Open: %v", errB)
		}
		defer closeOK(t, sB)
		if bBefore != 0 || bAfter != SchemaVersion() {
			t.Fatalf("B saw version %d before the lock and %d under it; want 0 and %d", bBefore, bAfter, SchemaVersion())
		}
		es, _ := sA.Audit(ctx, 1000)
		if n := countAction(es, ActionSchemaMigrate); n != SchemaVersion() {
			t.Fatalf("%d schema.migrate rows, want %d", n, SchemaVersion())
		}
	})
}

func TestMigrationRaceProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.db")
	const procs = 4
	cmds := make([]*exec.Cmd, procs)
	outs := make([]*bytes.Buffer, procs)
	for i := range cmds {
		cmds[i] = helperCmd(t, "open", path)
		outs[i] = &bytes.Buffer{}
		cmds[i].Stdout, cmds[i].Stderr = outs[i], outs[i]
	}
	for _, c := range cmds { // start all before waiting for any
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range cmds {
		if err := c.Wait(); err != nil || !strings.Contains(outs[i].String(), "opened") {
			t.Fatalf("child %d: %v\n%s", i, err, outs[i])
		}
	}
	s := openTest(t, path)
	es, _ := s.Audit(context.Background(), 1000)
	if n := countAction(es, ActionSchemaMigrate); n != SchemaVersion() {
		t.Fatalf("%d schema.migrate rows after %d racing processes, want %d", n, procs, SchemaVersion())
	}
}

func TestSchemaTooNew(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.db")
	s := openTest(t, path)
	future := SchemaVersion() + 7
	if _, err := s.db.Exec(fmt.Sprintf("PRAGMA user_version = %d", future)); err != nil {
		t.Fatal(err)
	}
	closeOK(t, s)
	_, err := Open(context.Background(), Options{Path: path})
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open = %v, want ErrSchemaTooNew", err)
	}
	t.Logf("refusal: %v", err)
	for _, v := range []int{future, SchemaVersion()} {
		if !strings.Contains(err.Error(), strconv.Itoa(v)) {
			t.Errorf("error %q does not name version %d", err, v)
		}
	}
	// The refusal changed nothing.
	raw, err := sql.Open(sqliteDriverName, path)
	if err != nil {
		t.Fatal(err)
	}
	defer closeOK(t, raw)
	var v int
	if err := raw.QueryRow("PRAGMA user_version").Scan(&v); err != nil || v != future {
		t.Fatalf("user_version = %d, %v", v, err)
	}
}

// Several Opens of one fresh file at once, in one process: every Open
// succeeds and the migrations run once (one schema.migrate row per version).
func TestConcurrentOpenGoroutines(t *testing.T) {
	bothBackends(t, func(t *testing.T) {
		path := newLocation(t)
		if !onPostgres(t) {
			path = filepath.Join(t.TempDir(), "sub", "users.db")
		}
		const n = 8
		ctx := context.Background()
		gate := make(chan struct{})
		stores := make([]*Store, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-gate
				stores[i], errs[i] = Open(ctx, optionsFor(path))
			}()
		}
		close(gate)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("Open #%d: %v", i, err)
			}
			defer closeOK(t, stores[i])
		}
		es, err := stores[0].Audit(ctx, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if got := countAction(es, ActionSchemaMigrate); got != SchemaVersion() {
			t.Fatalf("%d schema.migrate rows after %d concurrent Opens, want %d", got, n, SchemaVersion())
		}
	})
}

func withHooks(o Options, h *testHooks) Options { o.hooks = h; return o }
