package userstore

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

func TestChangesStamp(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v.db")
	a, err := Open(ctx, Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer closeOK(t, a)
	b, err := Open(ctx, Options{Path: path}) // another process, as far as a can tell
	if err != nil {
		t.Fatal(err)
	}
	defer closeOK(t, b)

	s0, err := a.Changes(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := a.Changes(ctx, 0); s != s0 {
		t.Fatal("stamp moved without a change")
	}
	// A write through a itself: seen at once, even inside a long window.
	if _, err := a.CreateUser(ctx, "t", NewUser{Username: "one"}); err != nil {
		t.Fatal(err)
	}
	s1, _ := a.Changes(ctx, time.Hour)
	if s1 == s0 {
		t.Fatal("own write not seen")
	}
	// A write through b: seen once the window has passed (0 here).
	if _, err := b.CreateUser(ctx, "t", NewUser{Username: "two"}); err != nil {
		t.Fatal(err)
	}
	if s, _ := a.Changes(ctx, time.Hour); s != s1 {
		t.Fatal("within the window the shared look is reused")
	}
	if s, _ := a.Changes(ctx, 0); s == s1 {
		t.Fatal("another connection's write not seen after the window")
	}
}
