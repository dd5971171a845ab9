// Package health says whether the plugin can do its work: every pool holds
// signing keys, and the identity store (when one is open) answers. The
// admin endpoint and the cognito_health handler both answer with it.
package health

import (
	"context"
	"net/http"
	"sort"
	"time"

	"github.com/caddy-cognito/caddy-cognito/internal/jose"
)

// KeySource is what a check reads of a pool's key set: *jose.KeySet.
type KeySource interface{ Stats() jose.KeyStats }

// StoreCheck asks the identity store to answer. open is false when no
// handler of the config has opened the store (nothing to check).
type StoreCheck func(ctx context.Context) (open bool, err error)

// The status values.
const (
	StatusOK          = "ok"
	StatusUnavailable = "unavailable"
	storeUnused       = "unused"
)

// storeTimeout bounds how long a check waits for the store: a health
// check that hangs is as bad as one that fails.
const storeTimeout = 2 * time.Second

// Checker checks one config's pools and store.
type Checker struct {
	pools map[string]KeySource
	names []string
	store StoreCheck
}

// New returns a Checker of pools (by name) and store (nil: no store).
func New(pools map[string]KeySource, store StoreCheck) *Checker {
	c := &Checker{pools: pools, store: store}
	for n := range pools {
		c.names = append(c.names, n)
	}
	sort.Strings(c.names)
	return c
}

// Report is the answer of a check.
type Report struct {
	// Status is ok, or unavailable when any part fails.
	Status string `json:"status"`
	// Pools says how many signing keys each pool holds, and when they
	// were last fetched.
	Pools map[string]Pool `json:"pools"`
	// Store is ok, unused (no handler opened it) or unavailable.
	Store string `json:"store"`
	// Failing names each failing part: "pool main: no signing keys",
	// "store: not answering".
	Failing []string `json:"failing,omitempty"`
	// StoreError is the store's own error. It can name hosts, users,
	// databases and paths, so only the admin endpoint shows it
	// (WithoutErrors drops it for a site).
	StoreError string `json:"store_error,omitempty"`
}

// WithoutErrors is the report without the store's own error text: the
// details a site may show a trusted peer.
func (r Report) WithoutErrors() Report {
	r.StoreError = ""
	return r
}

// Pool is one pool's part of a Report.
type Pool struct {
	Keys          int        `json:"keys"`
	KeysFetchedAt *time.Time `json:"keys_fetched_at"`
}

// Check looks at every part now.
func (c *Checker) Check(ctx context.Context) Report {
	r := Report{Status: StatusOK, Pools: make(map[string]Pool, len(c.pools)), Store: storeUnused}
	for _, name := range c.names {
		st := c.pools[name].Stats()
		p := Pool{Keys: st.Keys}
		if !st.FetchedAt.IsZero() {
			at := st.FetchedAt.UTC()
			p.KeysFetchedAt = &at
		}
		r.Pools[name] = p
		if st.Keys == 0 {
			r.Failing = append(r.Failing, "pool "+name+": no signing keys")
		}
	}
	if c.store != nil {
		ctx, cancel := context.WithTimeout(ctx, storeTimeout)
		defer cancel()
		switch open, err := c.store(ctx); {
		case err != nil:
			r.Store = StatusUnavailable
			r.Failing = append(r.Failing, "store: not answering")
			r.StoreError = err.Error()
		case open:
			r.Store = StatusOK
		}
	}
	if len(r.Failing) > 0 {
		r.Status = StatusUnavailable
	}
	return r
}

// HTTPStatus is 200 for a healthy report, else 503.
func (r Report) HTTPStatus() int {
	if r.Status == StatusOK {
		return http.StatusOK
	}
	return http.StatusServiceUnavailable
}

// Summary is the report without details, for a public health route.
func (r Report) Summary() map[string]string { return map[string]string{"status": r.Status} }
