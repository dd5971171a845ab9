// Package stampcache is the memory cache in front of the identity store: an
// entry is trusted only while the store's change stamp is the one it was
// read at, and for a bounded time, within count and byte bounds.
package stampcache

import (
	"sync"
	"time"

	"github.com/caddy-cognito/caddy-cognito/userstore"
)

// Cache maps keys to values read from the store. Past either bound it starts
// over: entries are only ever a shortcut, and starting over is cheaper than
// keeping an eviction order on the hot path. It is safe for concurrent use;
// readers never wait for each other.
type Cache[K comparable, V any] struct {
	maxCount int
	maxBytes int64
	ttl      time.Duration

	mu    sync.RWMutex
	m     map[K]entry[V]
	bytes int64 // the entries' sizes, under mu
}

type entry[V any] struct {
	v     V
	stamp userstore.Stamp
	at    time.Time
	size  int64
}

// New returns a cache of at most maxCount entries whose sizes (as Put is
// told them) add up to at most maxBytes (0: no byte bound), each trusted
// for ttl.
func New[K comparable, V any](maxCount int, maxBytes int64, ttl time.Duration) *Cache[K, V] {
	return &Cache[K, V]{maxCount: maxCount, maxBytes: maxBytes, ttl: ttl, m: make(map[K]entry[V])}
}

// Get returns the value cached under k if it was read at stamp, less than
// the cache's ttl before now.
func (c *Cache[K, V]) Get(k K, stamp userstore.Stamp, now time.Time) (V, bool) {
	c.mu.RLock()
	e, ok := c.m[k]
	c.mu.RUnlock()
	if !ok || e.stamp != stamp || now.Sub(e.at) > c.ttl {
		var zero V
		return zero, false
	}
	return e.v, true
}

// Put caches v under k as read at stamp and time at; size is what it
// counts against the byte bound.
func (c *Cache[K, V]) Put(k K, v V, stamp userstore.Stamp, at time.Time, size int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[k]; ok {
		c.bytes -= old.size
	}
	if len(c.m) >= c.maxCount || (c.maxBytes > 0 && c.bytes+size > c.maxBytes) {
		c.m, c.bytes = make(map[K]entry[V]), 0
	}
	c.m[k] = entry[V]{v: v, stamp: stamp, at: at, size: size}
	c.bytes += size
}

// Delete forgets k.
func (c *Cache[K, V]) Delete(k K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[k]; ok {
		c.bytes -= old.size
		delete(c.m, k)
	}
}

// Len and Bytes say how many entries the cache holds and their size.
func (c *Cache[K, V]) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}

// Bytes is the sum of the entries' sizes.
func (c *Cache[K, V]) Bytes() int64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.bytes
}
