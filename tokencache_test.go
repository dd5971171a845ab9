package caddycognito

import (
	"testing"
	"time"
)

// A hash collision must never hand one token's identity to another.
func TestTokenCacheComparesTheToken(t *testing.T) {
	c := newTokenCache(100)
	now := time.Now()
	id := &Identity{Subject: "alice", ExpiresAt: now.Add(time.Hour)}
	key := c.key("token-a")
	c.put(key, "token-a", id, now)
	if got := c.get(key, "token-a", now); got != id {
		t.Fatalf("hit for the stored token = %v", got)
	}
	// Same key, another token: as if the two collided.
	if got := c.get(key, "token-b", now); got != nil {
		t.Fatalf("colliding token got %v", got)
	}
	if got := c.get(key, "token-a", now.Add(time.Hour)); got != nil {
		t.Fatalf("served at exp: %v", got)
	}
}
