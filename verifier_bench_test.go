package caddycognito

// Benchmark names are stable: `make bench` divides BenchmarkVerifyCold by
// BenchmarkRSAVerifyRaw (the cost of verification beyond the bare RSA
// check) and reports BenchmarkVerifyHot (the cache-hit cost per request).

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/caddy-cognito/caddy-cognito/internal/jose"
)

func benchVerifier(b *testing.B, cacheSize int) (*testIssuer, *Verifier) {
	b.Helper()
	ti := newTestIssuer(b)
	ks := ti.KeySet(b, jose.KeySetOptions{})
	now := time.Now()
	return ti, NewVerifier(ks, VerifierConfig{
		Pool: "bench", Issuer: ti.URL, ClientIDs: []string{ti.ClientID}, TokenUse: "access",
		CacheSize: cacheSize, Now: func() time.Time { return now },
	})
}

// BenchmarkVerifyHot verifies the same token again and again: every
// iteration after the first is a cache hit.
func BenchmarkVerifyHot(b *testing.B) {
	ti, v := benchVerifier(b, 0)
	token := ti.Sign(ti.AccessClaims(nil))
	ctx := context.Background()
	if _, err := v.Verify(ctx, token); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := v.Verify(ctx, token); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyHotParallel is the cache hit under contention.
func BenchmarkVerifyHotParallel(b *testing.B) {
	ti, v := benchVerifier(b, 0)
	tokens := make([]string, 64)
	for i := range tokens {
		tokens[i] = ti.Sign(ti.AccessClaims(map[string]any{"jti": fmt.Sprint(i)}))
		if _, err := v.Verify(context.Background(), tokens[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := v.Verify(context.Background(), tokens[i%len(tokens)]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

// BenchmarkVerifyCold verifies distinct tokens, minted before the timer,
// with the cache disabled: each iteration is a full verification (parse,
// key lookup, RSA, claims, identity).
func BenchmarkVerifyCold(b *testing.B) {
	ti, v := benchVerifier(b, -1)
	tokens := make([]string, 256)
	for i := range tokens {
		tokens[i] = ti.Sign(ti.AccessClaims(map[string]any{"jti": fmt.Sprint(i), "pad": strings.Repeat("x", i)}))
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := v.Verify(ctx, tokens[i%len(tokens)]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRSAVerifyRaw is the reference: the bare PKCS#1 v1.5 SHA-256
// check with a 2048-bit key, digest precomputed.
func BenchmarkRSAVerifyRaw(b *testing.B) {
	priv := testRSAKey(b, 2048, "a")
	sum := sha256.Sum256([]byte("benchmark"))
	sig, err := rsa.SignPKCS1v15(nil, priv, crypto.SHA256, sum[:])
	if err != nil {
		b.Fatal(err)
	}
	pub := &priv.PublicKey
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyRejectForged is the cost of refusing a forged signature
// (failures are never cached, so this is what a flood of them costs).
func BenchmarkVerifyRejectForged(b *testing.B) {
	ti, v := benchVerifier(b, 0)
	token := signRS256(testRSAKey(b, 2048, "attacker"), []byte(`{"alg":"RS256","kid":"kid-1"}`), mustJSON(b, ti.AccessClaims(nil)))
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := v.Verify(ctx, token); err == nil {
			b.Fatal("forged token accepted")
		}
	}
}

// BenchmarkRefuseHostileHeader and BenchmarkRefuseBadSignature compare the
// cost of a flood of tokens with a 1,400-member header (refused by its
// size before parsing) with a flood of well-formed tokens whose signature
// fails: the first must not cost more than the second.
func BenchmarkRefuseHostileHeader(b *testing.B) {
	ti := newTestIssuer(b)
	v := NewVerifier(ti.KeySet(b, jose.KeySetOptions{Cooldown: time.Hour}), VerifierConfig{
		Issuer: ti.URL, ClientIDs: []string{ti.ClientID}, TokenUse: "access", CacheSize: -1,
	})
	tok := ti.SignRaw(hugeHeader(ti.Signer().KID, 1400), mustJSON(b, ti.AccessClaims(nil)))
	benchRefusal(b, v, tok, jose.ErrHeaderSize)
}

func BenchmarkRefuseBadSignature(b *testing.B) {
	ti := newTestIssuer(b)
	v := NewVerifier(ti.KeySet(b, jose.KeySetOptions{Cooldown: time.Hour}), VerifierConfig{
		Issuer: ti.URL, ClientIDs: []string{ti.ClientID}, TokenUse: "access", CacheSize: -1,
	})
	good := ti.Sign(ti.AccessClaims(nil))
	tok := good[:strings.LastIndexByte(good, '.')+1] + strings.Repeat("A", len(good)-strings.LastIndexByte(good, '.')-1)
	benchRefusal(b, v, tok, jose.ErrSignature)
}

func benchRefusal(b *testing.B, v *Verifier, tok string, want *TokenError) {
	ctx := context.Background()
	if _, err := v.Verify(ctx, tok); !errors.Is(err, want) {
		b.Fatalf("refused with %v, want %v", err, want)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, _ = v.Verify(ctx, tok)
	}
}
