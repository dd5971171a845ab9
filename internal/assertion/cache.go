package assertion

import (
	"hash/maphash"
	"slices"
	"sync"
	"time"
)

// DefaultCacheSize bounds the reused tokens: one per identity and site
// seen within half a lifetime, a few hundred bytes each.
const DefaultCacheSize = 8192

// who is everything a token says that varies by request: the site and
// the identity's claims. Two requests with equal who get the same token.
type who struct {
	https                            bool
	host, sub, username, email, pool string
	groups, roles                    []string
}

func (a *who) equal(b *who) bool {
	return a.https == b.https && a.host == b.host && a.sub == b.sub && a.username == b.username &&
		a.email == b.email && a.pool == b.pool && slices.Equal(a.groups, b.groups) && slices.Equal(a.roles, b.roles)
}

// cache maps a hash of who to its current token. A lookup hashes a few
// short strings (no allocation, no string building) and compares the
// entry's who field by field, so a hash collision is only a miss. When
// full, an insert evicts an arbitrary entry (Go's map order is random):
// the worst case is an extra signature, never a wrong token.
type cache struct {
	seed    maphash.Seed
	max     int
	mu      sync.RWMutex
	entries map[uint64]*entry
}

type entry struct {
	who     who
	token   string
	renewAt int64 // unix nanoseconds; reused strictly before
}

func newCache(size int) *cache {
	if size <= 0 {
		size = DefaultCacheSize
	}
	return &cache{seed: maphash.MakeSeed(), max: size, entries: make(map[uint64]*entry)}
}

func (c *cache) hash(w *who) uint64 {
	var h maphash.Hash
	h.SetSeed(c.seed)
	if w.https {
		_ = h.WriteByte(1)
	}
	for _, s := range [...]string{w.host, w.sub, w.username, w.email, w.pool} {
		_, _ = h.WriteString(s)
		_ = h.WriteByte(0)
	}
	for _, list := range [...][]string{w.groups, w.roles} {
		for _, s := range list {
			_, _ = h.WriteString(s)
			_ = h.WriteByte(0)
		}
		_ = h.WriteByte(1)
	}
	return h.Sum64()
}

func (c *cache) get(h uint64, w *who, now time.Time) (string, bool) {
	c.mu.RLock()
	e := c.entries[h]
	c.mu.RUnlock()
	if e == nil || now.UnixNano() >= e.renewAt || !e.who.equal(w) {
		return "", false
	}
	return e.token, true
}

func (c *cache) put(h uint64, w who, token string, renewAt time.Time) {
	e := &entry{who: w, token: token, renewAt: renewAt.UnixNano()}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[h]; !ok && len(c.entries) >= c.max {
		for k := range c.entries {
			delete(c.entries, k)
			break
		}
	}
	c.entries[h] = e
}

// len is the number of cached tokens (tests).
func (c *cache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}
