package caddycognito

import (
	"hash/maphash"
	"sync"
	"time"
)

// tokenCache remembers verified tokens until their exp, keyed by a seeded
// maphash of the token's last bytes (see key). A hit also compares the
// stored token with the presented one, byte for byte, so a hash collision
// can only ever be a miss (the token is then verified in full); the hash
// needs to be fast, not cryptographic. Only successful verifications go
// in, so failures cannot be used to flush it. The stored tokens stay in
// this process's memory, like the requests that carried them.
//
// It is split into shards, each a map under its own RWMutex, so that
// concurrent hits rarely touch the same lock. A hit is a read lock, a map
// lookup and a time comparison: no allocation.
type tokenCache struct {
	seed   maphash.Seed
	shards []cacheShard
	mask   uint32
}

// key hashes a token for the cache: its last keyBytes, which lie in the
// signature. Two valid tokens differ there (the signature covers header
// and payload), so distinct cached tokens still get distinct keys, and
// the hash of a 1 KiB token costs a sixteenth. A token that copies a
// cached one's signature under another payload only finds that entry,
// fails the byte compare, and is verified in full (and refused).
func (c *tokenCache) key(token string) uint64 {
	if len(token) > keyBytes {
		token = token[len(token)-keyBytes:]
	}
	return maphash.String(c.seed, token)
}

// keyBytes is how much of a token its cache key hashes: 48 bytes of an
// RS256 signature.
const keyBytes = 64

type cacheShard struct {
	mu      sync.RWMutex
	entries map[uint64]cacheEntry
	limit   int
	_       [40]byte // keep shards on separate cache lines
}

type cacheEntry struct {
	token string
	id    *Identity // shared read-only between requests
	exp   int64     // Unix nanoseconds of the token's exp, without leeway
}

// newTokenCache returns a cache holding at most size identities.
func newTokenCache(size int) *tokenCache {
	n := 1
	// Several shards only when each still holds a useful number of tokens.
	for n < 64 && size/(n*2) >= 256 {
		n *= 2
	}
	c := &tokenCache{seed: maphash.MakeSeed(), shards: make([]cacheShard, n), mask: uint32(n - 1)} //nolint:gosec // G115: n is a power of two in [1, 64]
	for i := range c.shards {
		// Floor division keeps the total within size.
		c.shards[i].limit = size / n
		c.shards[i].entries = make(map[uint64]cacheEntry)
	}
	return c
}

func (c *tokenCache) shard(key uint64) *cacheShard {
	// High bits pick the shard; the map uses the whole key.
	return &c.shards[uint32(key>>56)&c.mask]
}

// get returns the identity for token (whose hash is key) while its exp is
// in the future, or nil.
func (c *tokenCache) get(key uint64, token string, now time.Time) *Identity {
	s := c.shard(key)
	s.mu.RLock()
	e, ok := s.entries[key]
	s.mu.RUnlock()
	if !ok || e.token != token || now.UnixNano() >= e.exp {
		return nil // an expired entry is dropped by the next eviction
	}
	return e.id
}

// put remembers id for token (whose hash is key) until id.ExpiresAt. When the shard
// is full, expired entries go first, then arbitrary ones (Go's map order).
func (c *tokenCache) put(key uint64, token string, id *Identity, now time.Time) {
	exp := id.ExpiresAt.UnixNano()
	nowNs := now.UnixNano()
	if exp <= nowNs {
		return // accepted within leeway only; never serve it from the cache
	}
	s := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.entries[key]; !ok && len(s.entries) >= s.limit {
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
		s.entries[key] = cacheEntry{token: token, id: id, exp: exp}
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
