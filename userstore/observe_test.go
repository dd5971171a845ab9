package userstore

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestObserveSeesReadsAndWrites: Options.Observe (the metrics' seam) hears
// of each write transaction and each request-path read, by class.
func TestObserveSeesReadsAndWrites(t *testing.T) {
	var mu sync.Mutex
	seen := map[bool]int{}
	ctx := context.Background()
	s, err := Open(ctx, Options{Path: filepath.Join(t.TempDir(), "o.db"), Observe: func(write bool, d time.Duration) {
		if d < 0 {
			t.Errorf("negative duration %v", d)
		}
		mu.Lock()
		seen[write]++
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	mu.Lock()
	seen = map[bool]int{} // what Open itself did does not matter here
	mu.Unlock()
	u, err := s.CreateUser(ctx, "test", NewUser{Username: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetUserByID(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LookupIdentity(ctx, "https://issuer.example", "nobody"); err == nil {
		t.Fatal("lookup of an unknown identity succeeded")
	}
	mu.Lock()
	defer mu.Unlock()
	if seen[true] != 1 || seen[false] != 2 {
		t.Fatalf("writes %d reads %d, want 1 and 2", seen[true], seen[false])
	}
}
