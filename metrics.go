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

// sessionCounters are the session cache and refresh counters of pool.
func sessionCounters(pool string) session.Counters {
	m := metrics.Shared()
	cache, refresh := m.Cache("session"), m.Refresh(pool)
	return session.Counters{
		CacheHit: cache.Hit, CacheMiss: cache.Miss,
		RefreshOK: refresh.OK, RefreshRefused: refresh.Refused, RefreshUnreachable: refresh.Unreachable,
	}
}
