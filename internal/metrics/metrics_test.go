package metrics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/caddy-cognito/caddy-cognito/internal/jose"
)

// value finds the sample of name whose labels are exactly labels.
func value(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if sameLabels(m.GetLabel(), labels) {
				switch {
				case m.Counter != nil:
					return m.GetCounter().GetValue()
				case m.Gauge != nil:
					return m.GetGauge().GetValue()
				case m.Histogram != nil:
					return float64(m.GetHistogram().GetSampleCount())
				}
			}
		}
	}
	return -1
}

func sameLabels(got []*dto.LabelPair, want map[string]string) bool {
	if len(got) != len(want) {
		return false
	}
	for _, l := range got {
		if want[l.GetName()] != l.GetValue() {
			return false
		}
	}
	return true
}

// TestRegisterTwiceAndAcrossRegistries: a second handler of one config
// registers into the same registry, a reload into a new one; neither is an
// error, and the counts carry over to the new registry.
func TestRegisterTwiceAndAcrossRegistries(t *testing.T) {
	first := prometheus.NewPedanticRegistry()
	if err := Shared().Register(first); err != nil {
		t.Fatal(err)
	}
	if err := Shared().Register(first); err != nil {
		t.Fatalf("second registration in one registry: %v", err)
	}
	req := Shared().Requests("bearer")
	labels := map[string]string{"handler": "bearer", "result": "deny", "reason": "expired"}
	before := value(t, first, "caddy_cognito_requests_total", labels)
	req.Count(Expired)
	req.Count(Expired)
	if got := value(t, first, "caddy_cognito_requests_total", labels); got != before+2 {
		t.Fatalf("expired = %v, want %v", got, before+2)
	}
	reloaded := prometheus.NewPedanticRegistry()
	if err := Shared().Register(reloaded); err != nil {
		t.Fatalf("registration in a new registry: %v", err)
	}
	if got := value(t, reloaded, "caddy_cognito_requests_total", labels); got != before+2 {
		t.Fatalf("after the reload expired = %v, want %v (counts carry over)", got, before+2)
	}
	req.Count(Allowed)
	if got := value(t, reloaded, "caddy_cognito_requests_total", map[string]string{"handler": "bearer", "result": "allow", "reason": "none"}); got < 1 {
		t.Fatalf("allow = %v", got)
	}
}

func TestSignInsStayInTheirFixedSets(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	if err := Shared().Register(reg); err != nil {
		t.Fatal(err)
	}
	si := Shared().SignIns("pool-a", "pool-b")
	si.SignIn("", "ok", "invited")                 // the first pool
	si.SignIn("pool-b", "ok", "invited")           // the second
	si.SignIn("pool-a", "ok", "a rule nobody has") // counted as error/none, no new series
	si.SignIn("pool-c", "ok", "any")               // likewise
	if got := value(t, reg, "caddy_cognito_signins_total", map[string]string{"pool": "pool-a", "result": "ok", "rule": "invited"}); got != 1 {
		t.Errorf("ok/invited = %v, want 1", got)
	}
	if got := value(t, reg, "caddy_cognito_signins_total", map[string]string{"pool": "pool-b", "result": "ok", "rule": "invited"}); got != 1 {
		t.Errorf("pool-b ok/invited = %v, want 1", got)
	}
	if got := value(t, reg, "caddy_cognito_signins_total", map[string]string{"pool": "pool-a", "result": "error", "rule": "none"}); got != 2 {
		t.Errorf("error/none = %v, want 2", got)
	}
	if got := value(t, reg, "caddy_cognito_signins_total", map[string]string{"pool": "pool-c", "result": "ok", "rule": "any"}); got != -1 {
		t.Errorf("a series of an unknown pool exists: %v", got)
	}
	if got := value(t, reg, "caddy_cognito_signins_total", map[string]string{"pool": "pool-a", "result": "ok", "rule": "a rule nobody has"}); got != -1 {
		t.Errorf("a series outside the fixed set exists: %v", got)
	}
	Shared().Store().Observe(true, time.Millisecond)
	if got := value(t, reg, "caddy_cognito_store_seconds", map[string]string{"op": "write"}); got < 1 {
		t.Errorf("store write observations = %v", got)
	}
}

type fixedKeys jose.KeyStats

func (f fixedKeys) Stats() jose.KeyStats { return jose.KeyStats(f) }

func TestKeySetCollector(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(NewKeySetCollector(map[string]KeySource{
		"main": fixedKeys{Keys: 2, FetchesOK: 3, FetchesFailed: 1},
	})); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"caddy_cognito_jwks_keys", map[string]string{"pool": "main"}, 2},
		{"caddy_cognito_jwks_fetches_total", map[string]string{"pool": "main", "result": "ok"}, 3},
		{"caddy_cognito_jwks_fetches_total", map[string]string{"pool": "main", "result": "error"}, 1},
	} {
		if got := value(t, reg, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}
