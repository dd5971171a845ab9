package web

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// verifyFlow is a one-pool sign-in behind a trusted forward-auth proxy,
// logging into the returned observer.
func verifyFlow(t *testing.T) (*Flow, *observer.ObservedLogs) {
	t.Helper()
	cfg := staffConfig(t)
	core, logs := observer.New(zapcore.DebugLevel)
	cfg.Logger = zap.New(core)
	cfg.TrustedProxy = func(*http.Request) bool { return true }
	return New(cfg), logs
}

// TestVerifyForwardedURIHeaders: the sign-in return target of a
// forward-auth request comes from the original-URI headers only when all
// that are present name the same URI. A proxy sets one of them and may
// pass the client's others through (nginx any it does not set, Caddy's
// forward_auth X-Original-*), so when they disagree none is trusted and
// the browser returns to the site root, as when none is sent; the log
// says which headers disagreed, never what they said.
func TestVerifyForwardedURIHeaders(t *testing.T) {
	for _, tc := range []struct {
		name     string
		header   [][2]string
		location string
		warned   bool
	}{
		{"none", nil, "/auth/login?next=%2F", false},
		{"Caddy's X-Forwarded-Uri alone", [][2]string{{"X-Forwarded-Uri", "/reports?q=1"}}, "/auth/login?next=%2Freports%3Fq%3D1", false},
		{"nginx's X-Original-URI alone", [][2]string{{"X-Original-URI", "/reports"}}, "/auth/login?next=%2Freports", false},
		{"nginx sets both, alike", [][2]string{{"X-Original-URI", "/reports"}, {"X-Forwarded-Uri", "/reports"}}, "/auth/login?next=%2Freports", false},
		{"absolute URL on this site agrees with its path",
			[][2]string{{"X-Original-URL", "http://app.localhost/reports"}, {"X-Forwarded-Uri", "/reports"}}, "/auth/login?next=%2Freports", false},
		{"an empty header counts as none", [][2]string{{"X-Forwarded-Uri", ""}, {"X-Original-URI", "/reports"}}, "/auth/login?next=%2Freports", false},
		// nginx sets X-Original-URI; the client's X-Forwarded-Uri passes
		// through and came first before.
		{"client's X-Forwarded-Uri through nginx",
			[][2]string{{"X-Original-URI", "/reports"}, {"X-Forwarded-Uri", "/attacker-chosen"}}, "/auth/login?next=%2F", true},
		// Caddy's forward_auth sets X-Forwarded-Uri and passes X-Original-URI.
		{"client's X-Original-URI through Caddy",
			[][2]string{{"X-Forwarded-Uri", "/reports"}, {"X-Original-URI", "/attacker-chosen"}}, "/auth/login?next=%2F", true},
		{"client's absolute X-Original-URL",
			[][2]string{{"X-Forwarded-Uri", "/reports"}, {"X-Original-URL", "http://app.localhost/elsewhere"}}, "/auth/login?next=%2F", true},
		{"a proxy that appends to the client's header",
			[][2]string{{"X-Forwarded-Uri", "/attacker-chosen"}, {"X-Forwarded-Uri", "/reports"}}, "/auth/login?next=%2F", true},
		{"an unusable URI disagrees with a good one",
			[][2]string{{"X-Forwarded-Uri", "/reports"}, {"X-Original-URL", "not a url"}}, "/auth/login?next=%2F", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, logs := verifyFlow(t)
			r := httptest.NewRequest(http.MethodGet, "http://app.localhost/auth/verify", nil)
			r.Header.Set("Accept", "text/html")
			for _, h := range tc.header {
				r.Header.Add(h[0], h[1])
			}
			w := httptest.NewRecorder()
			if err := f.VerifyAskToSignIn(w, r); err != nil {
				t.Fatal(err)
			}
			if w.Code != http.StatusFound || w.Header().Get("Location") != tc.location || w.Header().Get("X-Login-URL") != tc.location {
				t.Errorf("%d to %q (X-Login-URL %q); want 302 to %q", w.Code, w.Header().Get("Location"), w.Header().Get("X-Login-URL"), tc.location)
			}
			warnings := logs.FilterLevelExact(zapcore.WarnLevel).All()
			if got := len(warnings) == 1; got != tc.warned || len(logs.All()) != len(warnings) {
				t.Fatalf("logged %v; want a warning: %v", logs.All(), tc.warned)
			}
			for _, e := range warnings {
				if !strings.Contains(e.Message, "disagree") {
					t.Errorf("warning %q does not say the headers disagree", e.Message)
				}
				line := e.Message + " " + fmt.Sprint(e.ContextMap())
				for _, h := range tc.header {
					if strings.Contains(line, h[1]) {
						t.Errorf("the log line %q holds the header value %q", line, h[1])
					}
					if !strings.Contains(line, h[0]) {
						t.Errorf("the log line %q does not name %s", line, h[0])
					}
				}
			}
		})
	}
}
