package assertion

import (
	"crypto/ecdsa"
	"testing"
)

// BenchmarkAssertionCached is the hot path: a token reused from the cache.
func BenchmarkAssertionCached(b *testing.B) {
	s, err := New(Config{Keys: []*ecdsa.PrivateKey{benchKey(b)}})
	if err != nil {
		b.Fatal(err)
	}
	site := Site{HTTPS: true, Host: "app.example.com"}
	if _, err := s.Assertion(site, alice); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Assertion(site, alice); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAssertionSign is what a cache miss costs: a new signature.
func BenchmarkAssertionSign(b *testing.B) {
	s, err := New(Config{Keys: []*ecdsa.PrivateKey{benchKey(b)}})
	if err != nil {
		b.Fatal(err)
	}
	w := who{https: true, host: "app.example.com", sub: alice.User(), username: alice.Username, email: alice.Email,
		pool: alice.Pool, groups: alice.Groups, roles: alice.Roles}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := s.sign(&w, s.now()); err != nil {
			b.Fatal(err)
		}
	}
}
