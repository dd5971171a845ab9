package caddycognito

import (
	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-cognito/caddy-cognito/internal/metrics"
	"github.com/caddy-cognito/caddy-cognito/internal/session"
)

// registerMetrics adds the plugin's metrics to the config's registry (the
// one the admin endpoint's /metrics and the `metrics` handler serve): the
// process-wide counters (internal/metrics, made once, so reloads neither
// reset them nor register them twice) and a collector of this config's
// pools' key sets.
func (a *App) registerMetrics(ctx caddy.Context) error {
	reg := ctx.GetMetricsRegistry()
	if reg == nil {
		return nil // a context not made by Caddy's config loading (unit tests)
	}
	if err := metrics.Shared().Register(reg); err != nil {
		return err
	}
	keys := make(map[string]metrics.KeySource, len(a.Pools))
	for name, p := range a.Pools {
		keys[name] = p.keys
	}
	return reg.Register(metrics.NewKeySetCollector(keys))
}

// sessionCounters are the session cache's counters and each pool's
// refresh counters.
func sessionCounters() session.Counters {
	m := metrics.Shared()
	cache := m.Cache("session")
	return session.Counters{
		CacheHit: cache.Hit, CacheMiss: cache.Miss,
		Refreshes: func(pool string) session.RefreshCounters {
			r := m.Refresh(pool)
			return session.RefreshCounters{OK: r.OK, Refused: r.Refused, Unreachable: r.Unreachable}
		},
	}
}

// poolNamesOf names pools, in order.
func poolNamesOf(pools []*Pool) []string {
	names := make([]string, len(pools))
	for i, p := range pools {
		names[i] = p.name
	}
	return names
}
