package stampcache

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/caddy-cognito/caddy-cognito/userstore"
)

func TestCache(t *testing.T) {
	ctx := context.Background()
	store, err := userstore.Open(ctx, userstore.Options{Path: filepath.Join(t.TempDir(), "c.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = store.Close() }() // a throwaway store; a failed close loses nothing
	s1, err := store.Changes(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.CreateUser(ctx, "test", userstore.NewUser{Username: "u"}); err != nil {
		t.Fatal(err)
	}
	s2, err := store.Changes(ctx, 0)
	if err != nil || s2 == s1 {
		t.Fatalf("a write left the stamp as it was (%v)", err)
	}
	t0 := time.Now()
	c := New[string, int](3, 100, time.Minute)
	c.Put("a", 1, s1, t0, 10)
	if v, ok := c.Get("a", s1, t0.Add(time.Second)); !ok || v != 1 {
		t.Fatalf("fresh entry: %v %v", v, ok)
	}
	if _, ok := c.Get("a", s2, t0.Add(time.Second)); ok {
		t.Error("an entry read before a change was trusted after it")
	}
	if _, ok := c.Get("a", s1, t0.Add(2*time.Minute)); ok {
		t.Error("an entry older than the ttl was trusted")
	}
	c.Put("b", 2, s1, t0, 10)
	c.Put("b", 3, s1, t0, 20) // replacing counts the new size only
	if c.Len() != 2 || c.Bytes() != 30 {
		t.Errorf("after replacing: %d entries, %d bytes; want 2, 30", c.Len(), c.Bytes())
	}
	c.Put("c", 4, s1, t0, 80) // over the byte bound: starts over
	if c.Len() != 1 || c.Bytes() != 80 {
		t.Errorf("past the byte bound: %d entries, %d bytes; want 1, 80", c.Len(), c.Bytes())
	}
	c.Delete("c")
	c.Delete("never")
	if c.Len() != 0 || c.Bytes() != 0 {
		t.Errorf("after deletes: %d entries, %d bytes", c.Len(), c.Bytes())
	}
	for i, k := range []string{"x", "y", "z", "w"} { // past the count bound
		c.Put(k, i, s1, t0, 1)
	}
	if c.Len() != 1 {
		t.Errorf("past the count bound: %d entries, want 1", c.Len())
	}
}
