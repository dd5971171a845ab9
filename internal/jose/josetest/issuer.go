// Package josetest holds test helpers shared by the tests of jose and of
// its callers: RSA keys, a stand-in Cognito issuer serving a JWKS over
// httptest, and token minting.
package josetest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Generating RSA keys is slow; every test binary makes a handful, once.
var (
	keyMu    sync.Mutex
	keyCache = map[string]*rsa.PrivateKey{}
)

// RSAKey returns a cached RSA key of the given size; name tells keys
// of the same size apart ("a", "b", …).
func RSAKey(tb testing.TB, bits int, name string) *rsa.PrivateKey {
	tb.Helper()
	keyMu.Lock()
	defer keyMu.Unlock()
	id := fmt.Sprintf("%d/%s", bits, name)
	if k := keyCache[id]; k != nil {
		return k
	}
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		tb.Fatalf("generating %d-bit RSA key: %v", bits, err)
	}
	keyCache[id] = k
	return k
}

// Key is one key of a test issuer.
type Key struct {
	KID  string
	Priv *rsa.PrivateKey
	// JWK overrides the published JSON for this key (e.g. use "enc").
	JWK map[string]any
}

// PublicJWK is the key's public half as a JWK, with JWK applied.
func (k Key) PublicJWK() map[string]any {
	m := map[string]any{
		"kty": "RSA",
		"kid": k.KID,
		"alg": "RS256",
		"use": "sig",
		"n":   base64.RawURLEncoding.EncodeToString(k.Priv.N.Bytes()),
		"e":   base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.Priv.E)).Bytes()),
	}
	for name, v := range k.JWK {
		if v == nil {
			delete(m, name)
		} else {
			m[name] = v
		}
	}
	return m
}

// Issuer is a stand-in Cognito user pool: an httptest server publishing
// a JWKS at JWKSURL, and the private keys to sign tokens for issuer URL.
type Issuer struct {
	tb       testing.TB
	Server   *httptest.Server
	URL      string // the issuer, as in `iss`
	JWKSURL  string
	ClientID string // the app client tokens are minted for by default

	mu        sync.Mutex
	published []Key // served in the JWKS
	signer    Key   // signs Sign/SignWith tokens
	rotations int

	requests atomic.Int64 // JWKS requests served
	status   atomic.Int64 // non-zero: answer the JWKS with this status
	body     atomic.Pointer[[]byte]
	delay    atomic.Int64 // nanoseconds to wait before answering
	accept   atomic.Value // the Accept header of the last request
}

// NewIssuer starts a stand-in issuer with one 2048-bit key ("kid-1"),
// stopped when the test ends.
func NewIssuer(tb testing.TB) *Issuer {
	tb.Helper()
	ti := &Issuer{tb: tb, ClientID: "test-client"}
	ti.signer = Key{KID: "kid-1", Priv: RSAKey(tb, 2048, "a")}
	ti.published = []Key{ti.signer}
	ti.Server = httptest.NewServer(http.HandlerFunc(ti.serveJWKS))
	tb.Cleanup(ti.Server.Close)
	ti.URL = ti.Server.URL + "/us-east-1_TEST"
	ti.JWKSURL = ti.URL + "/.well-known/jwks.json"
	return ti
}

func (ti *Issuer) serveJWKS(w http.ResponseWriter, r *http.Request) {
	ti.requests.Add(1)
	ti.accept.Store(r.Header.Get("Accept"))
	if d := ti.delay.Load(); d > 0 {
		select {
		case <-time.After(time.Duration(d)):
		case <-r.Context().Done():
			return
		}
	}
	if s := ti.status.Load(); s != 0 {
		http.Error(w, "unavailable", int(s))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if b := ti.body.Load(); b != nil {
		_, _ = w.Write(*b) // a write error is the client's problem
		return
	}
	_, _ = w.Write(ti.JWKS()) // a write error is the client's problem
}

// JWKS returns the JSON document the issuer publishes now.
func (ti *Issuer) JWKS() []byte {
	ti.mu.Lock()
	defer ti.mu.Unlock()
	keys := make([]map[string]any, 0, len(ti.published))
	for _, k := range ti.published {
		keys = append(keys, k.PublicJWK())
	}
	b, _ := json.Marshal(map[string]any{"keys": keys})
	return b
}

// LastAccept is the Accept header of the latest JWKS request.
func (ti *Issuer) LastAccept() string {
	a, _ := ti.accept.Load().(string)
	return a
}

// Requests is the number of JWKS requests served so far.
func (ti *Issuer) Requests() int64 { return ti.requests.Load() }

// SetStatus makes the JWKS endpoint answer with status (0: serve normally).
func (ti *Issuer) SetStatus(status int) { ti.status.Store(int64(status)) }

// SetBody makes the JWKS endpoint answer 200 with body (nil: the real JWKS).
func (ti *Issuer) SetBody(body []byte) {
	if body == nil {
		ti.body.Store(nil)
		return
	}
	ti.body.Store(&body)
}

// SetDelay makes the JWKS endpoint wait d before answering.
func (ti *Issuer) SetDelay(d time.Duration) { ti.delay.Store(int64(d)) }

// Publish adds a key to the JWKS without signing with it.
func (ti *Issuer) Publish(k Key) {
	ti.mu.Lock()
	defer ti.mu.Unlock()
	ti.published = append(ti.published, k)
}

// Rotate publishes a new key (kept alongside the old ones) and signs with it
// from now on. It returns the new kid.
func (ti *Issuer) Rotate() string {
	ti.mu.Lock()
	defer ti.mu.Unlock()
	ti.rotations++
	k := Key{KID: fmt.Sprintf("kid-%d", ti.rotations+1), Priv: RSAKey(ti.tb, 2048, fmt.Sprintf("rot%d", ti.rotations))}
	ti.published = append(ti.published, k)
	ti.signer = k
	return k.KID
}

// Signer returns the key that signs tokens now.
func (ti *Issuer) Signer() Key {
	ti.mu.Lock()
	defer ti.mu.Unlock()
	return ti.signer
}

// Sign mints an RS256 token with the current key and kid.
func (ti *Issuer) Sign(claims map[string]any) string {
	k := ti.Signer()
	return ti.SignWith(map[string]any{"alg": "RS256", "kid": k.KID}, claims)
}

// SignWith mints a token with exactly header (whatever alg it names), signed
// RS256 with the current key.
func (ti *Issuer) SignWith(header, claims map[string]any) string {
	return SignRS256(ti.Signer().Priv, MustJSON(ti.tb, header), MustJSON(ti.tb, claims))
}

// SignRaw signs the given header and payload bytes as they are.
func (ti *Issuer) SignRaw(header, payload []byte) string {
	return SignRS256(ti.Signer().Priv, header, payload)
}

// AccessClaims returns the claims of a valid Cognito access token for
// ClientID, with overrides applied (a nil value removes a claim).
func (ti *Issuer) AccessClaims(overrides map[string]any) map[string]any {
	now := time.Now().Unix()
	c := map[string]any{
		"sub":            "5f1c2a3e-0000-4000-8000-000000000001",
		"cognito:groups": []string{"admins", "staff"},
		"iss":            ti.URL,
		"version":        2,
		"client_id":      ti.ClientID,
		"origin_jti":     "c4f1",
		"event_id":       "e1",
		"token_use":      "access",
		"scope":          "openid email profile",
		"auth_time":      now - 60,
		"exp":            now + 3600,
		"iat":            now - 60,
		"jti":            "j1",
		"username":       "alice",
	}
	return ApplyOverrides(c, overrides)
}

// IDClaims returns the claims of a valid Cognito ID token for ClientID.
func (ti *Issuer) IDClaims(overrides map[string]any) map[string]any {
	now := time.Now().Unix()
	c := map[string]any{
		"sub":              "5f1c2a3e-0000-4000-8000-000000000001",
		"cognito:groups":   []string{"admins"},
		"email_verified":   true,
		"iss":              ti.URL,
		"cognito:username": "alice",
		"origin_jti":       "c4f1",
		"aud":              ti.ClientID,
		"event_id":         "e1",
		"token_use":        "id",
		"auth_time":        now - 60,
		"exp":              now + 3600,
		"iat":              now - 60,
		"jti":              "j2",
		"email":            "alice@example.com",
	}
	return ApplyOverrides(c, overrides)
}

// ApplyOverrides sets each of overrides in c (a nil value removes the
// member) and returns c.
func ApplyOverrides(c, overrides map[string]any) map[string]any {
	for k, v := range overrides {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// SignRS256 returns the compact JWS of header and payload signed by priv.
func SignRS256(priv *rsa.PrivateKey, header, payload []byte) string {
	input := B64URL(header) + "." + B64URL(payload)
	return input + "." + B64URL(RSASignBytes(priv, []byte(input)))
}

// RSASignBytes signs input with RS256 (PKCS#1 v1.5 over SHA-256).
func RSASignBytes(priv *rsa.PrivateKey, input []byte) []byte {
	sum := sha256.Sum256(input)
	sig, err := rsa.SignPKCS1v15(rand.Reader, priv, crypto.SHA256, sum[:])
	if err != nil {
		panic(err)
	}
	return sig
}

// B64URL encodes b as unpadded base64url, as JWS segments are.
func B64URL(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// MustJSON marshals v, failing the test if it cannot.
func MustJSON(tb testing.TB, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatalf("marshal: %v", err)
	}
	return b
}
