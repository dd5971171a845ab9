package caddycognito

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-cognito/caddy-cognito/internal/identity"
	"github.com/caddy-cognito/caddy-cognito/internal/jose"
	"github.com/caddy-cognito/caddy-cognito/userstore"
)

// testPool is a provisioned pool on the stand-in issuer ti, as
// Pool.provision would build it (without a Caddy context).
func testPool(tb testing.TB, name string, ti *testIssuer) *Pool {
	tb.Helper()
	ks := ti.KeySet(tb, jose.KeySetOptions{})
	p := &Pool{name: name, issuer: ti.URL, issuers: []string{ti.URL}, clientIDs: []string{ti.ClientID}, keys: ks, jwksURL: ti.JWKSURL,
		verifiers: map[string]*Verifier{}}
	for _, use := range tokenUses {
		p.verifiers[use] = NewVerifier(ks, VerifierConfig{Pool: name, Issuer: ti.URL, ClientIDs: p.clientIDs, TokenUse: use})
	}
	return p
}

// twoPools is a staff and a partners pool, each on its own issuer with its
// own key and app client.
func twoPools(t testing.TB) (staff, partners *testIssuer, set *issuerVerifiers) {
	staff, partners = newTestIssuer(t), newTestIssuer(t)
	partners.ClientID = "partner-client"
	partners.Rotate() // partners sign with a key of their own
	set, err := newIssuerVerifiers([]*Pool{testPool(t, "staff", staff), testPool(t, "partners", partners)}, "access")
	if err != nil {
		t.Fatal(err)
	}
	return staff, partners, set
}

func TestIssuerPicksPool(t *testing.T) {
	staff, partners, set := twoPools(t)
	ctx := context.Background()
	for _, tc := range []struct {
		ti   *testIssuer
		pool string
	}{{staff, "staff"}, {partners, "partners"}} {
		id, err := set.Verify(ctx, tc.ti.Sign(tc.ti.AccessClaims(nil)))
		if err != nil || id.Pool != tc.pool || id.Issuer != tc.ti.URL || id.ClientID != tc.ti.ClientID {
			t.Fatalf("%s token: %+v, %v", tc.pool, id, err)
		}
	}
	// The iss picks the pool whose keys and clients then decide: a
	// partners token claiming the staff issuer fails staff's signature
	// check, and a staff-signed token for the partners' client fails
	// staff's client rule.
	forged := partners.Sign(partners.AccessClaims(map[string]any{"iss": staff.URL, "client_id": staff.ClientID}))
	if _, err := set.Verify(ctx, forged); err == nil {
		t.Fatal("a partners-signed token claiming the staff issuer passed")
	}
	wrongClient := staff.Sign(staff.AccessClaims(map[string]any{"client_id": partners.ClientID}))
	if _, err := set.Verify(ctx, wrongClient); !errors.Is(err, errClient) {
		t.Fatalf("staff token for the partners' client: %v; want %v", err, errClient)
	}
}

func TestUnknownIssuerCostsNoKeyFetch(t *testing.T) {
	staff, partners, set := twoPools(t)
	stranger := newTestIssuer(t)
	stranger.Rotate() // an unknown kid too: a key set asked would refetch
	before := staff.Requests() + partners.Requests()
	for _, claims := range []map[string]any{
		stranger.AccessClaims(nil),
		stranger.AccessClaims(map[string]any{"iss": staff.URL + "/"}),               // near misses are misses
		stranger.AccessClaims(map[string]any{"iss": strings.ToUpper(partners.URL)}), // iss is compared exactly
	} {
		if _, err := set.Verify(context.Background(), stranger.Sign(claims)); !errors.Is(err, errIssuer) {
			t.Fatalf("iss %v: %v; want %v", claims["iss"], err, errIssuer)
		}
	}
	for _, bad := range []string{"x.y", "a.b.c", stranger.Sign(stranger.AccessClaims(map[string]any{"iss": 7}))} {
		if _, err := set.Verify(context.Background(), bad); err == nil {
			t.Fatalf("%q passed", bad)
		}
	}
	if after := staff.Requests() + partners.Requests(); after != before {
		t.Fatalf("JWKS fetched %d times for tokens of unknown issuers; want 0", after-before)
	}
	if n := set.byIssuer[staff.URL].sigChecks.Load() + set.byIssuer[partners.URL].sigChecks.Load(); n != 0 {
		t.Fatalf("%d signature checks for unknown issuers; want 0", n)
	}
}

func TestIssuerVerifiersCacheAcrossPools(t *testing.T) {
	staff, partners, set := twoPools(t)
	ctx := context.Background()
	tokens := []string{staff.Sign(staff.AccessClaims(nil)), partners.Sign(partners.AccessClaims(nil))}
	for range 3 {
		for _, tok := range tokens {
			if _, err := set.Verify(ctx, tok); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, ti := range []*testIssuer{staff, partners} {
		if n := set.byIssuer[ti.URL].sigChecks.Load(); n != 1 {
			t.Fatalf("pool %s: %d signature checks for one token sent three times; want 1", ti.URL, n)
		}
	}
}

func TestIssuerVerifiersSharedIssuerRefused(t *testing.T) {
	ti := newTestIssuer(t)
	_, err := newIssuerVerifiers([]*Pool{testPool(t, "a", ti), testPool(t, "b", ti)}, "access")
	if err == nil || !strings.Contains(err.Error(), "same issuer") {
		t.Fatalf("two pools on one issuer: %v", err)
	}
}

func TestHandlerPools(t *testing.T) {
	app := &App{Pools: map[string]*Pool{"staff": {}, "partners": {}}}
	if ps, err := app.handlerPools("", []string{"partners", "staff"}); err != nil || len(ps) != 2 || ps[0] != app.Pools["partners"] {
		t.Fatalf("pools in order: %v %v", ps, err)
	}
	for _, tc := range []struct {
		one  string
		many []string
		want string
	}{
		{"staff", []string{"partners"}, "not both"},
		{"", []string{"staff", "staff"}, "listed twice"},
		{"", []string{"staff", "nobody"}, "no pool named"},
		{"", nil, "choose one"},
	} {
		if _, err := app.handlerPools(tc.one, tc.many); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%q %q: %v; want %q", tc.one, tc.many, err, tc.want)
		}
	}
}

// TestBearerTwoPoolsHandler runs requests through a two-pool cognito_bearer:
// each pool's token passes with its pool named upstream; an unknown
// issuer gets 401 invalid_token.
func TestBearerTwoPoolsHandler(t *testing.T) {
	staff, partners, set := twoPools(t)
	b := &Bearer{Realm: "cognito", Pools: []string{"staff", "partners"}, verifiers: set, headers: identity.NewHeaders(DefaultHeaderPrefix), logger: zap.NewNop()}
	var seenPool string
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		seenPool = r.Header.Get("X-Auth-Pool")
		w.WriteHeader(http.StatusOK)
		return nil
	})
	serve := func(token string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		if err := b.ServeHTTP(w, withReplacer(benchClientRequest(bearerHeader(token))), next); err != nil {
			t.Fatal(err)
		}
		return w
	}
	for _, tc := range []struct {
		ti   *testIssuer
		pool string
	}{{staff, "staff"}, {partners, "partners"}} {
		seenPool = ""
		if w := serve(tc.ti.Sign(tc.ti.AccessClaims(nil))); w.Code != http.StatusOK || seenPool != tc.pool {
			t.Fatalf("%s token: %d, X-Auth-Pool %q", tc.pool, w.Code, seenPool)
		}
	}
	stranger := newTestIssuer(t)
	w := serve(stranger.Sign(stranger.AccessClaims(nil)))
	var body map[string]string
	_ = json.Unmarshal(w.Body.Bytes(), &body)
	if w.Code != http.StatusUnauthorized || body["error"] != "invalid_token" || !strings.Contains(w.Header().Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Fatalf("unknown issuer: %d %v %q", w.Code, body, w.Header().Get("WWW-Authenticate"))
	}
}

// TestVerifierOtherIssuerForm: a pool's other issuer form (Cognito's
// updated or original one) is accepted exactly, and the identity keeps the
// token's own iss.
func TestVerifierOtherIssuerForm(t *testing.T) {
	ti := newTestIssuer(t)
	other := "https://issuer-cognito-idp.us-east-1.amazonaws.com/us-east-1_TEST"
	v := NewVerifier(ti.KeySet(t, jose.KeySetOptions{}), VerifierConfig{
		Pool: "main", Issuer: ti.URL, Issuers: []string{other}, ClientIDs: []string{ti.ClientID}, TokenUse: "access",
	})
	for iss, ok := range map[string]bool{ti.URL: true, other: true, other + "/": false, strings.Replace(other, "issuer-", "", 1): false, "": false} {
		id, err := v.Verify(context.Background(), ti.Sign(ti.AccessClaims(map[string]any{"iss": iss})))
		if ok != (err == nil) || (ok && id.Issuer != iss) {
			t.Fatalf("iss %q: %+v, %v; want accepted=%v", iss, id, err, ok)
		}
	}
}

// TestBearerTwoPoolsMapped: with `users mapped`, each pool's identities
// map through that pool's issuer: a partners identity linked to a local
// user passes as that user, the same sub under the staff pool does not.
func TestBearerTwoPoolsMapped(t *testing.T) {
	staff, partners, set := twoPools(t)
	ctx := context.Background()
	store, err := userstore.Open(ctx, userstore.Options{Path: filepath.Join(t.TempDir(), "m.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	u, err := store.CreateUser(ctx, "test", userstore.NewUser{Username: "pat", Roles: []string{"partner"}})
	if err != nil {
		t.Fatal(err)
	}
	claims := partners.AccessClaims(nil)
	if err := store.LinkIdentity(ctx, "test", u.ID, partners.URL, claims["sub"].(string), ""); err != nil {
		t.Fatal(err)
	}
	b := &Bearer{Realm: "cognito", Pools: []string{"staff", "partners"}, Users: "mapped", UnmappedMessage: "no account", verifiers: set,
		mappers: map[string]*userMapper{"staff": newUserMapper(store, staff.URL, nil), "partners": newUserMapper(store, partners.URL, nil)},
		headers: identity.NewHeaders(DefaultHeaderPrefix), logger: zap.NewNop()}
	var seen string
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		seen = r.Header.Get("X-Auth-User") + " " + r.Header.Get("X-Auth-Roles")
		return nil
	})
	serve := func(token string) int {
		w := httptest.NewRecorder()
		if err := b.ServeHTTP(w, withReplacer(benchClientRequest(bearerHeader(token))), next); err != nil {
			t.Fatal(err)
		}
		return w.Code
	}
	if code := serve(partners.Sign(claims)); code != http.StatusOK || seen != u.ID+" partner" {
		t.Fatalf("linked partners identity: %d, upstream %q", code, seen)
	}
	// The same sub from the staff pool is another identity: not linked.
	if code := serve(staff.Sign(staff.AccessClaims(map[string]any{"sub": claims["sub"]}))); code != http.StatusForbidden {
		t.Fatalf("the sub under the staff pool: %d; want 403", code)
	}
}
