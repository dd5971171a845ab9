package caddycognito

import (
	"sync"
	"time"
)

// tokenCache remembers verified tokens, keyed by the SHA-256 of the token
// (the token itself is never stored), until their exp. Only successful
// verifications go in, so failures cannot be used to flush it.
//
// It is split into shards, each a map under its own RWMutex, so that
// concurrent hits rarely touch the same lock. A hit is a read lock, a map
// lookup and a time comparison: no allocation.
type tokenCache struct {
	shards []cacheShard
	mask   uint32
}

type cacheShard struct {
	mu      sync.RWMutex
	entries map[[32]byte]cacheEntry
	limit   int
	_       [40]byte // keep shards on separate cache lines
}

type cacheEntry struct {
	id  *Identity // shared read-only between requests
	exp int64     // Unix nanoseconds of the token's exp, without leeway
}

// newTokenCache returns a cache holding at most size identities.
func newTokenCache(size int) *tokenCache {
	n := 1
	// Several shards only when each still holds a useful number of tokens.
	for n < 64 && size/(n*2) >= 256 {
		n *= 2
	}
	c := &tokenCache{shards: make([]cacheShard, n), mask: uint32(n - 1)}
	for i := range c.shards {
		// Floor division keeps the total within size.
		c.shards[i].limit = size / n
		c.shards[i].entries = make(map[[32]byte]cacheEntry)
	}
	return c
}

func (c *tokenCache) shard(sum *[32]byte) *cacheShard {
	// The key is a cryptographic hash: any of its bytes is uniform.
	return &c.shards[uint32(sum[0])&c.mask]
}

// get returns the identity for the token hash while its exp is in the
// future, or nil.
func (c *tokenCache) get(sum *[32]byte, now time.Time) *Identity {
	s := c.shard(sum)
	s.mu.RLock()
	e, ok := s.entries[*sum]
	s.mu.RUnlock()
	if !ok || now.UnixNano() >= e.exp {
		return nil // an expired entry is dropped by the next eviction
	}
	return e.id
}

// put remembers id for the token hash until id.ExpiresAt. When the shard
// is full, expired entries go first, then arbitrary ones (Go's map order).
func (c *tokenCache) put(sum *[32]byte, id *Identity, now time.Time) {
	exp := id.ExpiresAt.UnixNano()
	nowNs := now.UnixNano()
	if exp <= nowNs {
		return // accepted within leeway only; never serve it from the cache
	}
	s := c.shard(sum)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.entries[*sum]; !ok && len(s.entries) >= s.limit {
		for k, e := range s.entries {
			if e.exp <= nowNs {
				delete(s.entries, k)
			}
		}
		// Still full: make room for a few more so eviction stays rare.
		drop := len(s.entries) - s.limit + 1
		if drop > 0 {
			drop += s.limit / 16
		}
		for k := range s.entries {
			if drop <= 0 {
				break
			}
			delete(s.entries, k)
			drop--
		}
	}
	if s.limit > 0 {
		s.entries[*sum] = cacheEntry{id: id, exp: exp}
	}
}

// len returns the number of entries, expired ones included.
func (c *tokenCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.entries)
		s.mu.RUnlock()
	}
	return n
}
