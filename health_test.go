package caddycognito

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-cognito/caddy-cognito/internal/health"
	"github.com/caddy-cognito/caddy-cognito/internal/jose"
)

type statsOf jose.KeyStats

func (s statsOf) Stats() jose.KeyStats { return jose.KeyStats(s) }

// TestHealthHandlerDetailsOnlyForTrustedPeers: cognito_health answers
// every client with the status code and {"status"}, and only a loopback
// peer or one of the server's trusted_proxies with the details.
func TestHealthHandlerDetailsOnlyForTrustedPeers(t *testing.T) {
	h := &HealthHandler{checker: health.New(map[string]health.KeySource{"main": statsOf{}}, nil)}
	serve := func(remote string, trusted bool) (int, map[string]any) {
		t.Helper()
		r := httptest.NewRequest(http.MethodGet, "/healthz", nil)
		r.RemoteAddr = remote
		vars := map[string]any{caddyhttp.TrustedProxyVarKey: trusted}
		r = r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, vars))
		w := httptest.NewRecorder()
		if err := h.ServeHTTP(w, r, nil); err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatalf("body %q: %v", w.Body, err)
		}
		if w.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("Cache-Control = %q", w.Header().Get("Cache-Control"))
		}
		return w.Code, body
	}
	for _, c := range []struct {
		remote  string
		trusted bool
		details bool
	}{
		{"203.0.113.7:4000", false, false},
		{"[2001:db8::1]:4000", false, false},
		{"127.0.0.1:4000", false, true},
		{"[::1]:4000", false, true},
		{"10.0.0.2:4000", true, true}, // a trusted proxy (the load balancer)
	} {
		code, body := serve(c.remote, c.trusted)
		if code != http.StatusServiceUnavailable || body["status"] != "unavailable" {
			t.Errorf("%s: %d %v, want 503 unavailable (the pool has no keys)", c.remote, code, body)
		}
		if _, has := body["pools"]; has != c.details {
			t.Errorf("%s (trusted proxy %v): details shown = %v, want %v: %v", c.remote, c.trusted, has, c.details, body)
		}
		if !c.details && len(body) != 1 {
			t.Errorf("%s: the public answer holds more than the status: %v", c.remote, body)
		}
	}
}
