package caddycognito

// `make bench` compares BenchmarkHandlerBearer and BenchmarkHandlerMapped
// with BenchmarkHandlerPlain: the same request through only the next
// handler, measured in the same run.

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-cognito/caddy-cognito/userstore"
)

// okHandler stands in for `respond "ok"`.
var okHandler = caddyhttp.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) error {
	w.WriteHeader(http.StatusOK)
	return nil
})

// benchRequest runs one request through h the way Caddy's server would
// (a fresh replacer in the context, the client's headers).
func benchRequest(b *testing.B, h caddyhttp.MiddlewareHandler, token string) {
	req := httptest.NewRequest("GET", "/api/things", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("User-Agent", "bench")
	req.Header.Set("Accept", "*/*")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := req.Clone(context.WithValue(req.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
		w := httptest.NewRecorder()
		if err := h.ServeHTTP(w, r, okHandler); err != nil || w.Code != 200 {
			b.Fatalf("status %d, %v", w.Code, err)
		}
	}
}

type passThrough struct{}

func (passThrough) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	return next.ServeHTTP(w, r)
}

func BenchmarkHandlerPlain(b *testing.B) {
	benchRequest(b, passThrough{}, "unused")
}

func benchBearer(b *testing.B) (*testIssuer, *Bearer) {
	ti, v := benchVerifier(b, 0)
	return ti, &Bearer{Realm: "cognito", verifier: v, headers: newIdentityHeaders(DefaultHeaderPrefix), logger: zap.NewNop()}
}

func BenchmarkHandlerBearer(b *testing.B) {
	ti, h := benchBearer(b)
	benchRequest(b, h, ti.Sign(ti.AccessClaims(nil)))
}

func BenchmarkHandlerMapped(b *testing.B) {
	ti, h := benchBearer(b)
	store, err := userstore.Open(context.Background(), userstore.Options{Path: filepath.Join(b.TempDir(), "bench.db")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	ctx := context.Background()
	u, err := store.CreateUser(ctx, "bench", userstore.NewUser{Username: "alice", Roles: []string{"editor"}})
	if err != nil {
		b.Fatal(err)
	}
	claims := ti.AccessClaims(nil)
	if err := store.LinkIdentity(ctx, "bench", u.ID, ti.URL, claims["sub"].(string), ""); err != nil {
		b.Fatal(err)
	}
	h.mapper = newUserMapper(store, ti.URL)
	h.Require = []Requirement{{Roles: []string{"editor"}}}
	benchRequest(b, h, ti.Sign(claims))
}
