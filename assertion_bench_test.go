package caddycognito

// BenchmarkHandlerLoginAssertion and BenchmarkHandlerBearerAssertion are
// BenchmarkHandlerLogin and BenchmarkHandlerBearer with the `assertion`
// option on: after the first request, the cached-assertion path (the
// token is reused, not signed again). `make bench` compares them with the
// same handlers without it.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-cognito/caddy-cognito/internal/assertion"
)

func benchSigner(b testing.TB) *assertion.Signer {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	s, err := assertion.New(assertion.Config{Keys: []*ecdsa.PrivateKey{k}})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// checkAssertionSent runs one untimed request and fails unless the
// upstream got an assertion.
func checkAssertionSent(b *testing.B, h caddyhttp.MiddlewareHandler, header func(http.Header)) {
	var got string
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		got = r.Header.Get("X-Auth-Assertion")
		w.WriteHeader(http.StatusOK)
		return nil
	})
	w := httptest.NewRecorder()
	if err := h.ServeHTTP(w, withReplacer(benchClientRequest(header)), next); err != nil || w.Code != 200 || got == "" {
		b.Fatalf("status %d, %v, assertion %q", w.Code, err, got)
	}
}

func BenchmarkHandlerLoginAssertion(b *testing.B) {
	l, cookie, _ := benchLogin(b)
	l.signer = benchSigner(b)
	header := func(h http.Header) {
		bearerHeader("unused")(h)
		h.Set("Cookie", cookie.String())
	}
	checkAssertionSent(b, l, header)
	benchRequest(b, l, header)
}

func BenchmarkHandlerBearerAssertion(b *testing.B) {
	ti, h := benchBearer(b)
	h.signer = benchSigner(b)
	header := bearerHeader(ti.Sign(ti.AccessClaims(nil)))
	checkAssertionSent(b, h, header)
	benchRequest(b, h, header)
}
