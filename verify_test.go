package caddycognito

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// verifyRequest is a forward-auth subrequest to /auth/verify with the
// browser's headers (cookie, Accept), from a trusted proxy or not.
func verifyRequest(target string, trusted bool, header map[string]string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "http://app.localhost"+target, nil)
	r.Header.Set("Accept", "text/html,application/xhtml+xml")
	for k, v := range header {
		r.Header.Set(k, v)
	}
	r = withReplacer(r)
	vars := map[string]any{caddyhttp.TrustedProxyVarKey: trusted}
	return r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, vars))
}

// TestVerifyEndpoint: {prefix}verify answers a forward-auth proxy: 200
// with the identity headers for a live session (never calling the next
// handler), a sign-in redirect back to the original URL (read from
// forwarding headers only from a trusted proxy), 401 for what is not a
// navigation or when asked, and 403 for an unmet requirement.
func TestVerifyEndpoint(t *testing.T) {
	l, cookie, _ := benchLogin(t)
	nextCalled := false
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { nextCalled = true; return nil })
	serve := func(r *http.Request) *httptest.ResponseRecorder {
		t.Helper()
		w := httptest.NewRecorder()
		if err := l.ServeHTTP(w, r, next); err != nil {
			t.Fatal(err)
		}
		return w
	}

	w := serve(verifyRequest("/auth/verify", true, map[string]string{"Cookie": cookie.String(), "X-Forwarded-Uri": "/reports"}))
	if w.Code != http.StatusOK || w.Header().Get("X-Auth-Username") != "alice" || w.Header().Get("X-Auth-User") == "" ||
		w.Header().Get("X-Auth-Roles") != "editor" || w.Header().Get("Cache-Control") != "no-store" || w.Body.Len() != 0 || nextCalled {
		t.Fatalf("live session: %d %v %q (next called: %v)", w.Code, w.Header(), w.Body, nextCalled)
	}

	// With `assertion`, the answer carries the signed identity too, for
	// the original site (the forwarded host, from a trusted proxy).
	l.signer = benchSigner(t)
	w = serve(verifyRequest("/auth/verify", true, map[string]string{"Cookie": cookie.String(), "X-Forwarded-Host": "app.example.com"}))
	if w.Code != http.StatusOK || w.Header().Get("X-Auth-Assertion") == "" {
		t.Fatalf("live session with assertion: %d %v", w.Code, w.Header())
	}
	claims := assertionClaims(t, w.Header().Get("X-Auth-Assertion"))
	if claims["aud"] != "app.example.com" || claims["iss"] != "http://app.example.com" || claims["username"] != "alice" {
		t.Errorf("verify's assertion claims %v, want aud app.example.com, iss http://app.example.com, username alice", claims)
	}
	l.signer = nil

	for _, tc := range []struct {
		name     string
		target   string
		trusted  bool
		header   map[string]string
		status   int
		location string
	}{
		{"navigation, trusted proxy", "/auth/verify", true,
			map[string]string{"X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/reports?q=1"}, 302, "/auth/login?next=%2Freports%3Fq%3D1"},
		{"nginx X-Original-URL on this site", "/auth/verify", true,
			map[string]string{"X-Original-URL": "http://app.localhost/a/b"}, 302, "/auth/login?next=%2Fa%2Fb"},
		{"disagreeing URI headers: none trusted", "/auth/verify", true,
			map[string]string{"X-Original-URI": "/reports", "X-Forwarded-Uri": "/chosen-by-the-client"}, 302, "/auth/login?next=%2F"},
		{"foreign origin not in return_origins", "/auth/verify", true,
			map[string]string{"X-Forwarded-Uri": "https://evil.example/x"}, 302, "/auth/login?next=%2F"},
		{"untrusted peer: forwarding headers ignored", "/auth/verify", false,
			map[string]string{"X-Forwarded-Uri": "/reports", "X-Forwarded-Method": "POST"}, 302, "/auth/login?next=%2F"},
		{"original POST: 401", "/auth/verify", true,
			map[string]string{"X-Forwarded-Method": "POST", "X-Forwarded-Uri": "/reports"}, 401, ""},
		{"API caller: 401", "/auth/verify", true,
			map[string]string{"Accept": "application/json", "X-Forwarded-Uri": "/reports"}, 401, ""},
		{"nginx asks for status", "/auth/verify?unauthenticated=status", true,
			map[string]string{"X-Forwarded-Uri": "/reports"}, 401, ""},
		{"bogus session", "/auth/verify", true,
			map[string]string{"Cookie": "cognito_session=nope", "X-Forwarded-Uri": "/reports"}, 302, "/auth/login?next=%2Freports"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := serve(verifyRequest(tc.target, tc.trusted, tc.header))
			if w.Code != tc.status || w.Header().Get("Location") != tc.location || w.Header().Get("X-Auth-User") != "" {
				t.Fatalf("%d to %q (X-Auth-User %q); want %d to %q", w.Code, w.Header().Get("Location"), w.Header().Get("X-Auth-User"), tc.status, tc.location)
			}
			if tc.status == 401 {
				var body map[string]string
				if json.Unmarshal(w.Body.Bytes(), &body) != nil || body["login_url"] != "/auth/login?next=%2Freports" || w.Header().Get("X-Login-URL") != body["login_url"] {
					t.Fatalf("401 body %q", w.Body)
				}
			}
		})
	}

	if w := serve(verifyRequest("/auth/verify", true, map[string]string{"Cookie": cookie.String(), "X-Forwarded-Method": "DELETE"})); w.Code != 200 {
		t.Fatalf("the original method does not matter with a session: %d", w.Code)
	}
	post := verifyRequest("/auth/verify", true, map[string]string{"Cookie": cookie.String()})
	post.Method = http.MethodPost
	if w := serve(post); w.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST to verify: %d", w.Code)
	}
	l.Require = []Requirement{{Roles: []string{"admin"}}}
	if w := serve(verifyRequest("/auth/verify", true, map[string]string{"Cookie": cookie.String()})); w.Code != http.StatusForbidden || w.Header().Get("X-Auth-User") != "" {
		t.Fatalf("unmet requirement: %d %v", w.Code, w.Header())
	}
	if nextCalled {
		t.Fatal("verify called the next handler")
	}
}

// assertionClaims decodes a compact JWT's payload, unverified: the
// signature is checked by the assertion package's own tests.
func assertionClaims(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("assertion %q is not a compact JWS", token)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return c
}
