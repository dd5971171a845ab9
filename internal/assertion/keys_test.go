package assertion

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
)

func TestParsePEM(t *testing.T) {
	k := newKey(t)
	sec1, _ := x509.MarshalECPrivateKey(k)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(k)
	params := pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{6, 8, 42, 134, 72, 206, 61, 3, 1, 7}})
	for name, data := range map[string][]byte{
		"SEC 1":                  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}),
		"PKCS 8":                 pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}),
		"SEC 1 after parameters": append(params, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})...),
	} {
		got, err := ParsePEM(data)
		if err != nil || !got.Equal(k) {
			t.Errorf("%s: %v", name, err)
		}
	}

	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384DER, _ := x509.MarshalECPrivateKey(p384)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsaDER, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	pub, _ := x509.MarshalPKIXPublicKey(k.Public())
	for name, tc := range map[string]struct {
		data []byte
		want string
	}{
		"P-384":      {pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: p384DER}), "P-256"},
		"RSA":        {pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: rsaDER}), "not an ECDSA P-256 key"},
		"public key": {pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), "no PEM private key"},
		"not PEM":    {[]byte("hello"), "no PEM private key"},
	} {
		if _, err := ParsePEM(tc.data); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v; want one saying %q", name, err, tc.want)
		}
	}
}

func TestKeyFromSeed(t *testing.T) {
	seed := bytes.Repeat([]byte{7, 1, 2, 3}, 8)
	a, err := KeyFromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := KeyFromSeed(seed)
	if !a.Equal(b) {
		t.Error("the same seed gives another key")
	}
	seed[0]++
	if c, _ := KeyFromSeed(seed); c.Equal(a) {
		t.Error("another seed gives the same key")
	}
	if _, err := KeyFromSeed(seed[:16]); err == nil {
		t.Error("a 16-byte seed is accepted")
	}
	if a.Curve != elliptic.P256() {
		t.Error("not P-256")
	}
}
