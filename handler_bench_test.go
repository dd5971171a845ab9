package caddycognito

// `make bench` compares BenchmarkHandlerBearer, BenchmarkHandlerMapped and
// BenchmarkHandlerLogin with BenchmarkHandlerPlain: the same request
// through only the next handler, measured in the same run; and
// BenchmarkHandlerBearerTwoPools with BenchmarkHandlerBearer.

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-cognito/caddy-cognito/internal/identity"
	"github.com/caddy-cognito/caddy-cognito/internal/provider"
	"github.com/caddy-cognito/caddy-cognito/internal/roles"
	"github.com/caddy-cognito/caddy-cognito/internal/seal"
	"github.com/caddy-cognito/caddy-cognito/internal/session"
	"github.com/caddy-cognito/caddy-cognito/internal/web"
	"github.com/caddy-cognito/caddy-cognito/userstore"
)

// okHandler stands in for `respond "ok"`.
var okHandler = caddyhttp.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) error {
	w.WriteHeader(http.StatusOK)
	return nil
})

// benchClientRequest is the request every handler benchmark sends: a GET
// with a client's usual headers, plus what header adds (a token, a cookie).
func benchClientRequest(header func(http.Header)) *http.Request {
	req := httptest.NewRequest("GET", "/api/things", nil)
	req.Header.Set("User-Agent", "bench")
	req.Header.Set("Accept", "*/*")
	header(req.Header)
	return req
}

// withReplacer gives r what Caddy's server puts in every request's context
// (the replacer, the vars, the original request, ...), as Caddy does it.
// (no response placeholder is asked for, so no response writer).
func withReplacer(r *http.Request) *http.Request {
	return caddyhttp.PrepareRequest(r.Clone(r.Context()), caddy.NewReplacer(), nil, benchServer)
}

// benchServer stands in for the Caddy server a request arrives on.
var benchServer = &caddyhttp.Server{}

// bearerHeader sets Authorization: Bearer token.
func bearerHeader(token string) func(http.Header) {
	return func(h http.Header) { h.Set("Authorization", "Bearer "+token) }
}

// benchRequest runs one request through h the way Caddy's server would
// (a fresh replacer in the context, the client's headers).
func benchRequest(b *testing.B, h caddyhttp.MiddlewareHandler, header func(http.Header)) {
	req := benchClientRequest(header)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w := httptest.NewRecorder()
		if err := h.ServeHTTP(w, withReplacer(req), okHandler); err != nil || w.Code != 200 {
			b.Fatalf("status %d, %v", w.Code, err)
		}
	}
}

type passThrough struct{}

func (passThrough) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	return next.ServeHTTP(w, r)
}

func BenchmarkHandlerPlain(b *testing.B) {
	benchRequest(b, passThrough{}, bearerHeader("unused"))
}

func benchBearer(b *testing.B) (*testIssuer, *Bearer) {
	ti, v := benchVerifier(b, 0)
	return ti, &Bearer{Realm: "cognito", verifier: v, headers: identity.NewHeaders(DefaultHeaderPrefix), logger: zap.NewNop()}
}

func BenchmarkHandlerBearer(b *testing.B) {
	ti, h := benchBearer(b)
	benchRequest(b, h, bearerHeader(ti.Sign(ti.AccessClaims(nil))))
}

// BenchmarkHandlerBearerOneHeader is BenchmarkHandlerBearer with
// `identity_headers user`: the difference is what the other identity
// headers cost (mostly the growth of the request's header map).
func BenchmarkHandlerBearerOneHeader(b *testing.B) {
	ti, h := benchBearer(b)
	var err error
	if h.headers, err = h.headers.Only([]string{"user"}); err != nil {
		b.Fatal(err)
	}
	benchRequest(b, h, bearerHeader(ti.Sign(ti.AccessClaims(nil))))
}

// BenchmarkHandlerBearerTwoPools is BenchmarkHandlerBearer on a handler
// listing two pools (`pool staff partners`), with a token of the second:
// the cache hit is the handler's own, before any iss is read.
func BenchmarkHandlerBearerTwoPools(b *testing.B) {
	_, partners, set := twoPools(b)
	h := &Bearer{Realm: "cognito", Pools: []string{"staff", "partners"}, verifiers: set, headers: identity.NewHeaders(DefaultHeaderPrefix), logger: zap.NewNop()}
	benchRequest(b, h, bearerHeader(partners.Sign(partners.AccessClaims(nil))))
}

func BenchmarkHandlerMapped(b *testing.B) {
	ti, h := benchBearer(b)
	store, err := userstore.Open(context.Background(), userstore.Options{Path: filepath.Join(b.TempDir(), "bench.db")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := store.Close(); err != nil {
			b.Error(err)
		}
	})
	ctx := context.Background()
	u, err := store.CreateUser(ctx, "bench", userstore.NewUser{Username: "alice", Roles: []string{"editor"}})
	if err != nil {
		b.Fatal(err)
	}
	claims := ti.AccessClaims(nil)
	if err := store.LinkIdentity(ctx, "bench", u.ID, ti.URL, claims["sub"].(string), ""); err != nil {
		b.Fatal(err)
	}
	// as Provision builds it: with a roles block whose group rule matches
	// the token (admins), so the steady state compares and never writes
	mp, err := roles.New([]roles.Rule{{Group: "admins", Roles: []string{"admin"}}, {Group: "ops", Roles: []string{"operator"}}})
	if err != nil {
		b.Fatal(err)
	}
	h.mapper = newUserMapper(store, ti.URL, roles.NewSyncer(mp, store))
	h.Require = []Requirement{{Roles: []string{"editor"}}}
	benchRequest(b, h, bearerHeader(ti.Sign(claims)))
}

// benchLogin is a cognito_login handler as Provision would build it, on a
// real store, with one live session whose tokens are not due for a refresh
// (the provider client is preset, so nothing is ever fetched). It returns
// the handler and the session cookie.
func benchLogin(b testing.TB) (*Login, *http.Cookie, *session.Manager) {
	ctx := context.Background()
	store, err := userstore.Open(ctx, userstore.Options{Path: filepath.Join(b.TempDir(), "bench.db")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := store.Close(); err != nil {
			b.Error(err)
		}
	})
	user, err := store.CreateUser(ctx, "bench", userstore.NewUser{Username: "alice", Email: "alice@example.com", Roles: []string{"editor"}})
	if err != nil {
		b.Fatal(err)
	}
	sealer, err := seal.New([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		b.Fatal(err)
	}
	pool := &Pool{name: "main", issuer: "https://issuer.example", clientIDs: []string{"rp"}, clientSecret: "s"}
	pc := provider.Preset(provider.NewClient(pool.providerPool(), provider.Endpoints{Authorize: "https://issuer.example/a", Token: "https://issuer.example/t"}, nil, nil)) //nolint:gosec // G101: a token endpoint URL, not a credential
	sessions, err := newLoginSessions(store, sealer, []*provider.Resolver{pc}, []*Pool{pool}, "", defaultIdleTimeout, defaultSessionLifetime, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}

	raw, err := provider.RandomToken(32)
	if err != nil {
		b.Fatal(err)
	}
	h := session.HashID(raw)
	claims, _ := json.Marshal(session.Claims{
		ID:    json.RawMessage(`{"iss":"https://issuer.example","sub":"s-1","aud":"rp","cognito:username":"alice","email":"alice@example.com","email_verified":true,"cognito:groups":["staff"]}`),
		Scope: "openid email profile",
	})
	now := time.Now()
	err = store.CreateSession(ctx, userstore.Session{
		IDHash: h, UserID: user.ID, Issuer: pool.issuer, Sub: "s-1", ClientID: pool.loginClientID(),
		CreatedAt: now, LastSeenAt: now,
		IdleExpiresAt: now.Add(defaultIdleTimeout), AbsoluteExpiresAt: now.Add(defaultSessionLifetime),
		AccessExpiresAt: now.Add(defaultSessionLifetime), // no refresh during the run
		RefreshToken:    sealer.Seal([]byte("rt"), []byte(h)), IDTokenClaims: claims,
	})
	if err != nil {
		b.Fatal(err)
	}
	pages, err := web.LoadPages(nil)
	if err != nil {
		b.Fatal(err)
	}
	l := &Login{
		PathPrefix:      defaultLoginPrefix,
		Unauthenticated: "auto",
		pool:            pool,
		logger:          zap.NewNop(),
		headers:         identity.NewHeaders(DefaultHeaderPrefix),
		flow: web.New(web.Config{
			PathPrefix: defaultLoginPrefix, Unauthenticated: "auto", Sessions: sessions, Store: store,
			Sealer: sealer, Provider: pc, Pages: pages, TrustedProxy: fromTrustedProxy, Logger: zap.NewNop(),
		}),
	}
	return l, &http.Cookie{Name: web.SessionCookieBase, Value: raw}, sessions //nolint:gosec // G124: a request cookie; Secure/HttpOnly/SameSite mean nothing there
}

// BenchmarkHandlerLogin: a request with a live session (the hot path: the
// session is cached) through cognito_login. The request also carries the
// token header the other benchmarks send, so they compare like with like.
func BenchmarkHandlerLogin(b *testing.B) {
	l, cookie, sessions := benchLogin(b)
	header := func(h http.Header) {
		bearerHeader("unused")(h)
		h.Set("Cookie", cookie.String())
	}
	// Once, untimed: the session is found and the upstream sees the user.
	var seen http.Header
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		seen = r.Header.Clone()
		w.WriteHeader(http.StatusOK)
		return nil
	})
	w := httptest.NewRecorder()
	if err := l.ServeHTTP(w, withReplacer(benchClientRequest(header)), next); err != nil || w.Code != 200 {
		b.Fatalf("with a session: status %d, %v: %s", w.Code, err, w.Body)
	}
	s, err := sessions.ByID(context.Background(), cookie.Value)
	if err != nil {
		b.Fatal(err)
	}
	if got := seen.Get("X-Auth-User"); got == "" || got != s.User().ID {
		b.Fatalf("upstream saw X-Auth-User %q, want the local user id (headers %v)", got, seen)
	}
	benchRequest(b, l, header)
	if n := sessions.Loads(); n != 1 {
		b.Errorf("the store was read %d times for one session, want 1 (the hot path is the cache)", n)
	}
}
