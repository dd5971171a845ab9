// Package metrics holds the plugin's Prometheus metrics: process-wide
// collectors, made once and registered into each config's registry (Caddy
// gives every config load a fresh one), so counters keep counting across
// reloads and a second registration is never an error. Every label value
// comes from a fixed set or from the operator's configuration (pool
// names), never from a request. Callers resolve the label children once,
// when they are provisioned, and count with the children's atomic adds.
package metrics

import (
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

const namespace = "caddy_cognito"

// Set is the plugin's process-wide metrics.
type Set struct {
	requests     *prometheus.CounterVec
	signIns      *prometheus.CounterVec
	refresh      *prometheus.CounterVec
	cacheLookups *prometheus.CounterVec
	storeSeconds *prometheus.HistogramVec
}

// Shared returns the process-wide Set, made on first use.
var Shared = sync.OnceValue(func() *Set {
	return &Set{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "requests_total",
			Help: "Requests the cognito_bearer, cognito_login and cognito_invitations handlers served (result allow) or refused (result deny), by reason.",
		}, []string{"handler", "result", "reason"}),
		signIns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "signins_total",
			Help: "Browser sign-ins that ended (callbacks), by pool, result (ok, refused, error) and the admission rule (linked for a known identity; none when not admitted).",
		}, []string{"pool", "result", "rule"}),
		refresh: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "refresh_total",
			Help: "Session token refreshes, by pool and result (ok, refused, unreachable).",
		}, []string{"pool", "result"}),
		cacheLookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "cache_lookups_total",
			Help: "Memory cache lookups, by cache (token, session, user) and result (hit, miss).",
		}, []string{"cache", "result"}),
		storeSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "store_seconds",
			Help:    "Time spent in identity store operations, by class (read, write).",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}, []string{"op"}),
	}
})

// Register adds the Set to reg. A collector already in reg (a second
// handler of the same config) is fine.
func (s *Set) Register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{s.requests, s.signIns, s.refresh, s.cacheLookups, s.storeSeconds} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) && are.ExistingCollector == c {
				continue
			}
			return err
		}
	}
	return nil
}

// Reason is why a handler let a request through or refused it: the
// `reason` label of requests_total, from a fixed set.
type Reason uint8

// The reasons.
const (
	Allowed           Reason = iota // result allow
	NoToken                         // no bearer token offered
	InvalidRequest                  // a token offered in a form that is not read
	InvalidToken                    // a bad signature, issuer, client, claims…
	Expired                         // an expired token
	InsufficientScope               // a requirement not met
	Unmapped                        // a valid token without an active local user
	Unavailable                     // keys, store or provider unavailable
	NoSession                       // cognito_login, cognito_invitations: no live session
	InvalidInvitation               // cognito_invitations: an unknown, used, expired or revoked link, or one for someone else
	numReasons
)

var reasonLabels = [numReasons]string{"none", "no_token", "invalid_request", "invalid_token", "expired", "insufficient_scope", "unmapped", "unavailable", "no_session", "invalid_invitation"}

// Requests are one handler kind's requests_total children, by Reason.
type Requests [numReasons]prometheus.Counter

// Requests resolves the children of handler (bearer, login, invitations).
func (s *Set) Requests(handler string) *Requests {
	var r Requests
	for i := range r {
		result := "deny"
		if Reason(i) == Allowed {
			result = "allow"
		}
		r[i] = s.requests.WithLabelValues(handler, result, reasonLabels[i])
	}
	return &r
}

// Count counts one request.
func (r *Requests) Count(reason Reason) {
	if r != nil {
		r[reason].Inc()
	}
}

// Lookups are one cache's hit and miss counters.
type Lookups struct{ Hit, Miss prometheus.Counter }

// Cache resolves the children of cache (token, session, user).
func (s *Set) Cache(cache string) Lookups {
	return Lookups{Hit: s.cacheLookups.WithLabelValues(cache, "hit"), Miss: s.cacheLookups.WithLabelValues(cache, "miss")}
}

// Refreshes are one pool's refresh_total children.
type Refreshes struct{ OK, Refused, Unreachable prometheus.Counter }

// Refresh resolves the children of pool.
func (s *Set) Refresh(pool string) Refreshes {
	return Refreshes{
		OK:          s.refresh.WithLabelValues(pool, "ok"),
		Refused:     s.refresh.WithLabelValues(pool, "refused"),
		Unreachable: s.refresh.WithLabelValues(pool, "unreachable"),
	}
}

// SignIns are one handler's signins_total children, by pool, result and
// rule.
type SignIns struct {
	first string // the pool a sign-in that names none belongs to
	by    map[[3]string]prometheus.Counter
}

// SignInResults and SignInRules are the label values of signins_total.
var (
	SignInResults = []string{"ok", "refused", "error"}
	SignInRules   = []string{"linked", "invited", "sso_migration", "trusted_provider", "email_domain", "any", "none"}
)

// SignIns resolves the children of pools (at least one; the first is
// the handler's default).
func (s *Set) SignIns(pools ...string) *SignIns {
	si := &SignIns{first: pools[0], by: map[[3]string]prometheus.Counter{}}
	for _, pool := range pools {
		for _, res := range SignInResults {
			for _, rule := range SignInRules {
				si.by[[3]string{pool, res, rule}] = s.signIns.WithLabelValues(pool, res, rule)
			}
		}
	}
	return si
}

// SignIn counts one sign-in of pool ("": the first). A pool, result or
// rule outside the resolved sets counts as an error of the first pool
// (rule none) rather than making a new series.
func (si *SignIns) SignIn(pool, result, rule string) {
	if pool == "" {
		pool = si.first
	}
	c, ok := si.by[[3]string{pool, result, rule}]
	if !ok {
		c = si.by[[3]string{si.first, "error", "none"}]
	}
	c.Inc()
}

// StoreTimer observes identity store operations.
type StoreTimer struct{ read, write prometheus.Observer }

// Store resolves the store_seconds children.
func (s *Set) Store() StoreTimer {
	return StoreTimer{read: s.storeSeconds.WithLabelValues("read"), write: s.storeSeconds.WithLabelValues("write")}
}

// Observe records one operation that took d.
func (t StoreTimer) Observe(write bool, d time.Duration) {
	if write {
		t.write.Observe(d.Seconds())
		return
	}
	t.read.Observe(d.Seconds())
}
