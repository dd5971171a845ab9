package caddycognito

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-cognito/caddy-cognito/internal/identity"
	"github.com/caddy-cognito/caddy-cognito/userstore"
)

// A store that cannot answer must never look like "no such user": the
// request gets 503, and nothing reaches the upstream.
func TestMappedStoreUnavailableIs503(t *testing.T) {
	// Every request looks at the store (a cached answer younger than
	// changeCheckAge would otherwise be served from memory).
	defer func(old time.Duration) { changeCheckAge = old }(changeCheckAge)
	changeCheckAge = 0
	ti := newTestIssuer(t)
	store, err := userstore.Open(context.Background(), userstore.Options{Path: filepath.Join(t.TempDir(), "s.db")})
	if err != nil {
		t.Fatal(err)
	}
	h := &Bearer{
		Realm: "cognito", UnmappedMessage: "no account", verifier: ti.Verifier(t, "access"),
		headers: identity.NewHeaders(DefaultHeaderPrefix), logger: zap.NewNop(),
		mapper: newUserMapper(store, ti.URL),
	}
	serve := func() *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set("Authorization", "Bearer "+ti.Sign(ti.AccessClaims(nil)))
		req = req.WithContext(context.WithValue(req.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
		w := httptest.NewRecorder()
		if err := h.ServeHTTP(w, req, okHandler); err != nil {
			t.Fatal(err)
		}
		return w
	}
	if w := serve(); w.Code != 403 {
		t.Fatalf("unknown user with a working store: %d; want 403", w.Code)
	}
	if err := store.Close(); err != nil { // as good as a vanished disk
		t.Fatal(err)
	}
	w := serve()
	var body map[string]string
	_ = json.Unmarshal(w.Body.Bytes(), &body)
	if w.Code != 503 || body["error"] != "temporarily_unavailable" {
		t.Fatalf("store unavailable: %d %q; want 503 temporarily_unavailable", w.Code, w.Body.String())
	}
}
