package invitations

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-cognito/caddy-cognito/internal/pgtest"
	"github.com/caddy-cognito/caddy-cognito/userstore"
)

// TestMain stops the PostgreSQL server TestPostgresAcceptRaceTwoInstances uses.
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// TestPostgresAcceptRaceTwoInstances: two stores on one PostgreSQL (two
// Caddy instances), 50 concurrent acceptances of one invitation spread
// over both: exactly one wins, every other is ErrUsed, one user exists.
func TestPostgresAcceptRaceTwoInstances(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Shared(t).NewDatabase(t)
	c := &clock{}
	c.t.Store(time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC).UnixNano())
	var svcs []*Service
	var stores []*userstore.Store
	for range 2 {
		s, err := userstore.Open(ctx, userstore.Options{Driver: "postgres", DSN: dsn, Now: c.now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		stores = append(stores, s)
		svcs = append(svcs, New(s, c.now))
	}
	_, secret, err := svcs[0].Create(ctx, "admin", CreateRequest{Email: "race@example.com", Roles: []string{"member"}})
	if err != nil {
		t.Fatal(err)
	}
	const n = 50
	var wg sync.WaitGroup
	var won, used atomic.Int64
	errs := make(chan error, n)
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, _, err := svcs[i%2].Accept(ctx, secret, ident(fmt.Sprintf("s-%d", i), "race@example.com", true), AcceptOptions{})
			switch {
			case err == nil:
				won.Add(1)
			case errors.Is(err, ErrUsed):
				used.Add(1)
			default:
				errs <- err
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("neither a win nor a clear refusal: %v", err)
	}
	if won.Load() != 1 || used.Load() != n-1 {
		t.Errorf("%d won, %d refused as used; want 1 and %d", won.Load(), used.Load(), n-1)
	}
	for i, s := range stores {
		if users, _ := s.ListUsers(ctx, userstore.UserFilter{}); len(users) != 1 {
			t.Errorf("instance %d sees %d users after the race, want 1", i, len(users))
		}
	}
}
