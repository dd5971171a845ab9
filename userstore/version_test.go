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

// TestChangesWindowEdge: another process's commit is trusted away for
// exactly maxAge after the look that missed it started, on a clock the
// test steps (so a loaded machine cannot move the edge).
func TestChangesWindowEdge(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v.db")
	a := openTest(t, path)
	b := openTest(t, path)
	now := time.Unix(1_800_000_000, 0)
	a.watch.now = func() time.Time { return now }
	const window = 5 * time.Millisecond

	before, err := a.Changes(ctx, window) // the look starts at now
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.CreateUser(ctx, "t", NewUser{Username: "other"}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(window - time.Nanosecond)
	if s, _ := a.Changes(ctx, window); s != before {
		t.Fatal("inside the window the last look is reused")
	}
	now = now.Add(time.Nanosecond)
	after, err := a.Changes(ctx, window)
	if err != nil {
		t.Fatal(err)
	}
	if after == before {
		t.Fatal("a call maxAge after the look still trusts it: another process's commit is missed")
	}
	// The new look is trusted for the next window.
	now = now.Add(window - time.Nanosecond)
	if s, _ := a.Changes(ctx, window); s != after {
		t.Fatal("the new look is not reused inside its window")
	}
}
