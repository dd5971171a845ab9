package assertion

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// ParsePEM reads one P-256 private key from PEM: SEC 1 (`EC PRIVATE KEY`,
// what `openssl ecparam -name prime256v1 -genkey -noout` writes) or
// PKCS #8 (`PRIVATE KEY`, what `openssl genpkey -algorithm EC -pkeyopt
// ec_paramgen_curve:P-256` writes). Any other key type or curve is
// refused: ES256 is P-256 with SHA-256, nothing else.
func ParsePEM(data []byte) (*ecdsa.PrivateKey, error) {
	var block *pem.Block
	for {
		block, data = pem.Decode(data)
		if block == nil {
			return nil, errors.New("no PEM private key found (want EC PRIVATE KEY or PRIVATE KEY)")
		}
		if block.Type == "EC PRIVATE KEY" || block.Type == "PRIVATE KEY" {
			break
		}
		// skip `EC PARAMETERS` and other blocks openssl may put first
	}
	var key any
	var err error
	if block.Type == "EC PRIVATE KEY" {
		key, err = x509.ParseECPrivateKey(block.Bytes)
	} else {
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", block.Type, err)
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("the key is a %T, not an ECDSA P-256 key", key)
	}
	if ec.Curve != elliptic.P256() {
		return nil, fmt.Errorf("the key is on %s; ES256 needs P-256 (prime256v1)", ec.Curve.Params().Name)
	}
	return ec, nil
}

// LoadPEMFile reads a P-256 private key from a PEM file (see ParsePEM).
func LoadPEMFile(path string) (*ecdsa.PrivateKey, error) {
	data, err := os.ReadFile(path) //nolint:gosec // G304: the operator's configured key file
	if err != nil {
		return nil, fmt.Errorf("assertion key: %w", err)
	}
	k, err := ParsePEM(data)
	if err != nil {
		return nil, fmt.Errorf("assertion key %s: %w", path, err)
	}
	return k, nil
}

// seedInfo separates the assertion key from anything else derived from
// the same seed.
const seedInfo = "caddy-cognito assertion signing key v1"

// KeyFromSeed derives a P-256 private key from a random seed of at least
// 32 bytes, the same key every time. The default key is a seed file made
// by seal.LoadOrCreateKeyFile (race-free creation, 0600) rather than a
// PEM file, so that one tested piece of code creates every generated key
// of the plugin. The scalar is HKDF-SHA256 output; the rare value that is
// not a valid scalar (zero, or not below the group order: about 2^-32)
// moves on to the next counter, as FIPS 186-5's rejection sampling does.
func KeyFromSeed(seed []byte) (*ecdsa.PrivateKey, error) {
	if len(seed) < 32 {
		return nil, fmt.Errorf("assertion key seed is %d bytes; need at least 32", len(seed))
	}
	var salt [4]byte
	for counter := uint32(0); counter < 64; counter++ {
		binary.BigEndian.PutUint32(salt[:], counter)
		scalar, err := hkdf.Key(sha256.New, seed, salt[:], seedInfo, 32)
		if err != nil {
			return nil, err
		}
		k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), scalar)
		clear(scalar)
		if err == nil {
			return k, nil
		}
	}
	return nil, errors.New("assertion key seed: no valid scalar") // unreachable in practice
}

// publicJWK is an EC public key as a JWK: the members RFC 7638 hashes, in
// its order, and the ones a key set adds.
type publicJWK struct {
	Crv string `json:"crv"`
	Kty string `json:"kty"`
	X   string `json:"x"`
	Y   string `json:"y"`
	Kid string `json:"kid,omitempty"`
	Alg string `json:"alg,omitempty"`
	Use string `json:"use,omitempty"`
}

// jwkOf returns the key's public JWK, with kid set to its RFC 7638
// thumbprint: SHA-256 over the required members in lexicographic order
// without whitespace, base64url.
func jwkOf(k *ecdsa.PrivateKey) (publicJWK, error) {
	pt, err := k.PublicKey.Bytes() // 0x04 || X || Y, 32 bytes each on P-256
	if err != nil {
		return publicJWK{}, err
	}
	if len(pt) != 65 || pt[0] != 4 {
		return publicJWK{}, errors.New("unexpected P-256 public key encoding")
	}
	j := publicJWK{Crv: "P-256", Kty: "EC", X: b64(pt[1:33]), Y: b64(pt[33:])}
	required, err := json.Marshal(j) // kid, alg, use are empty: omitted
	if err != nil {
		return publicJWK{}, err
	}
	sum := sha256.Sum256(required)
	j.Kid, j.Alg, j.Use = b64(sum[:]), "ES256", "sig"
	return j, nil
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
