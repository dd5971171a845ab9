package caddycognito

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-cognito/caddy-cognito/internal/jose"
)

// firstFetchWait is jose's bound on how long acquire waits for the first
// fetch (KeySetOptions.FirstWait left at its default).
const firstFetchWait = 2 * time.Second

func accessVerifier(ti *testIssuer, ks *jose.KeySet) *Verifier {
	return NewVerifier(ks, VerifierConfig{Issuer: ti.URL, ClientIDs: []string{ti.ClientID}, TokenUse: "access", CacheSize: -1})
}

func TestKeySetUnreachableAtStart(t *testing.T) {
	// A port nobody listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String() + "/.well-known/jwks.json"
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	began := time.Now()
	ks, err := acquireKeySet(ctx, url)
	if err != nil {
		t.Fatalf("acquire failed: %v", err)
	}
	defer releaseKeySet(url)
	if d := time.Since(began); d > firstFetchWait+time.Second {
		t.Fatalf("acquire took %s", d)
	}
	ti := newTestIssuer(t)
	_, err = accessVerifier(ti, ks).Verify(context.Background(), ti.Sign(ti.AccessClaims(nil)))
	var te *TokenError
	if !errors.As(err, &te) || !te.Unavailable {
		t.Fatalf("want an Unavailable error, got %v", err)
	}
}

func TestKeySetSlowFirstFetchBoundsAcquire(t *testing.T) {
	ti := newTestIssuer(t)
	ti.SetDelay(time.Hour) // a JWKS that never answers
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	began := time.Now()
	ks, err := acquireKeySet(ctx, ti.JWKSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer releaseKeySet(ti.JWKSURL)
	if d := time.Since(began); d < firstFetchWait/2 || d > firstFetchWait+time.Second {
		t.Fatalf("acquire took %s, want about %s", d, firstFetchWait)
	}
	if ks.HasKeys() {
		t.Fatal("keys without a fetch")
	}
}

func TestKeySetUsagePoolSharesAndStops(t *testing.T) {
	ti := newTestIssuer(t)
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	a, err := acquireKeySet(ctx, ti.JWKSURL)
	if err != nil {
		t.Fatal(err)
	}
	b, err := acquireKeySet(ctx, ti.JWKSURL)
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Fatal("two key sets for one URL")
	}
	if ti.Requests() != 1 {
		t.Fatalf("requests = %d, want 1", ti.Requests())
	}
	if !a.HasKeys() {
		t.Fatal("no keys after acquire")
	}
	releaseKeySet(ti.JWKSURL)
	if refs, ok := keySetPool.References(ti.JWKSURL); !ok || refs != 1 {
		t.Fatalf("after one of two releases: %d references, held %v", refs, ok)
	}
	releaseKeySet(ti.JWKSURL)
	if _, ok := keySetPool.References(ti.JWKSURL); ok {
		t.Fatal("pool still holds the key set")
	}
	// Destructed (jose's tests show Destruct ends every goroutine): an
	// unknown kid, which a live set would refetch for, fetches nothing.
	ghost := signRS256(testRSAKey(t, 2048, "ghost"), []byte(`{"alg":"RS256","kid":"ghost"}`), mustJSON(t, ti.AccessClaims(nil)))
	if _, err := accessVerifier(ti, a).Verify(context.Background(), ghost); err == nil {
		t.Fatal("ghost kid accepted")
	}
	if ti.Requests() != 1 {
		t.Fatalf("requests after the last release = %d, want 1", ti.Requests())
	}
	// A new acquire after the last release starts afresh.
	c, err := acquireKeySet(ctx, ti.JWKSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer releaseKeySet(ti.JWKSURL)
	if c == a {
		t.Fatal("destroyed key set handed out again")
	}
}

// TestKeyRedirectPolicy: the pool's key sets follow a redirect only where
// the configured JWKS URL could point (jose's tests cover the hop limit).
func TestKeyRedirectPolicy(t *testing.T) {
	for target, ok := range map[string]bool{
		"https://keys.example.com/jwks.json": true,
		"http://127.0.0.1:9229/p/jwks.json":  true,
		"http://keys.example.com/jwks.json":  false,
		"file:///etc/passwd":                 false,
	} {
		if err := checkKeyRedirect(target); (err == nil) != ok {
			t.Errorf("redirect to %s: err = %v", target, err)
		}
	}
}
