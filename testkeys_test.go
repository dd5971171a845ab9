package caddycognito

// Test helpers shared by the package's tests: the stand-in Cognito issuer,
// keys and token minting of josetest under the names the tests use, and
// key sets and verifiers on that issuer.

import (
	"crypto/rsa"
	"testing"

	"github.com/caddy-cognito/caddy-cognito/internal/jose"
	"github.com/caddy-cognito/caddy-cognito/internal/jose/josetest"
	"github.com/caddy-cognito/caddy-cognito/internal/standin"
)

// testIssuer is a stand-in Cognito user pool (see josetest.Issuer).
type testIssuer struct{ *josetest.Issuer }

// testKey is one key of a test issuer.
type testKey = josetest.Key

// newTestIssuer starts a stand-in issuer with one 2048-bit key ("kid-1"),
// stopped when the test ends.
func newTestIssuer(tb testing.TB) *testIssuer {
	tb.Helper()
	return &testIssuer{josetest.NewIssuer(tb)}
}

// KeySet returns a fresh, unshared KeySet on this issuer's JWKS with test
// timings, after its first fetch; it is destroyed when the test ends.
func (ti *testIssuer) KeySet(tb testing.TB, opts jose.KeySetOptions) *jose.KeySet {
	tb.Helper()
	return standin.KeySet(tb, ti.JWKSURL, opts)
}

// Verifier returns a Verifier for tokenUse on a fresh KeySet of this issuer.
func (ti *testIssuer) Verifier(tb testing.TB, tokenUse string) *Verifier {
	tb.Helper()
	return NewVerifier(ti.KeySet(tb, jose.KeySetOptions{}), VerifierConfig{
		Pool: "test", Issuer: ti.URL, ClientIDs: []string{ti.ClientID}, TokenUse: tokenUse,
	})
}

func testRSAKey(tb testing.TB, bits int, name string) *rsa.PrivateKey {
	tb.Helper()
	return josetest.RSAKey(tb, bits, name)
}

func applyOverrides(c, overrides map[string]any) map[string]any {
	return josetest.ApplyOverrides(c, overrides)
}

func signRS256(priv *rsa.PrivateKey, header, payload []byte) string {
	return josetest.SignRS256(priv, header, payload)
}

func rsaSignBytes(priv *rsa.PrivateKey, input []byte) []byte {
	return josetest.RSASignBytes(priv, input)
}

func b64url(b []byte) string { return josetest.B64URL(b) }

func mustJSON(tb testing.TB, v any) []byte {
	tb.Helper()
	return josetest.MustJSON(tb, v)
}
