package metrics

import (
	"sort"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/caddy-cognito/caddy-cognito/internal/jose"
)

// KeySource is what the key set metrics read: *jose.KeySet.
type KeySource interface{ Stats() jose.KeyStats }

var (
	jwksFetchesDesc = prometheus.NewDesc(namespace+"_jwks_fetches_total",
		"Fetches of a pool's JSON Web Key Set, by pool and result (ok, error).", []string{"pool", "result"}, nil)
	jwksKeysDesc = prometheus.NewDesc(namespace+"_jwks_keys",
		"Signing keys a pool's key set holds.", []string{"pool"}, nil)
)

// keySetCollector reports one config's pools' key sets at scrape time.
// The counts live in the key sets (shared across reloads), so a collector
// made per config, in that config's fresh registry, never counts twice
// and never meets an older registration.
type keySetCollector struct {
	names []string
	pools map[string]KeySource
}

// NewKeySetCollector reports the key sets of pools (by pool name).
func NewKeySetCollector(pools map[string]KeySource) prometheus.Collector {
	c := &keySetCollector{pools: pools}
	for n := range pools {
		c.names = append(c.names, n)
	}
	sort.Strings(c.names)
	return c
}

func (c *keySetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- jwksFetchesDesc
	ch <- jwksKeysDesc
}

func (c *keySetCollector) Collect(ch chan<- prometheus.Metric) {
	for _, name := range c.names {
		st := c.pools[name].Stats()
		ch <- prometheus.MustNewConstMetric(jwksFetchesDesc, prometheus.CounterValue, float64(st.FetchesOK), name, "ok")
		ch <- prometheus.MustNewConstMetric(jwksFetchesDesc, prometheus.CounterValue, float64(st.FetchesFailed), name, "error")
		ch <- prometheus.MustNewConstMetric(jwksKeysDesc, prometheus.GaugeValue, float64(st.Keys), name)
	}
}
