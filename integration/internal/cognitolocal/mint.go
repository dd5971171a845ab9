package cognitolocal

import (
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// KeyID is the kid cognito-local puts on every token it signs.
const KeyID = "CognitoLocal"

// Minter signs tokens with cognito-local's own (public, test-only) key, so
// cognito-local's JWKS verifies them. It makes the claims cognito-local
// cannot: client-credentials tokens with scopes, expired tokens, wrong
// audiences...
type Minter struct {
	Key *rsa.PrivateKey
	Kid string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// LoadMinter reads testenv/node_modules/cognito-local/lib/keys/cognitoLocal.private.json.
func LoadMinter() (*Minter, error) {
	dir, err := TestenvDir()
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(dir, "node_modules", "cognito-local", "lib", "keys", "cognitoLocal.private.json")) //nolint:gosec // G304: cognito-local's test key under testenv/node_modules
	if err != nil {
		return nil, fmt.Errorf("cognitolocal: cognito-local's key: %w", err)
	}
	var f struct{ PEM string }
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, err
	}
	block, _ := pem.Decode([]byte(f.PEM))
	if block == nil {
		return nil, errors.New("cognitolocal: no PEM block in cognito-local's key file")
	}
	var key *rsa.PrivateKey
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		key = k
	} else if k8, err8 := x509.ParsePKCS8PrivateKey(block.Bytes); err8 == nil {
		var ok bool
		if key, ok = k8.(*rsa.PrivateKey); !ok {
			return nil, errors.New("cognitolocal: key is not RSA")
		}
	} else {
		return nil, err
	}
	return &Minter{Key: key, Kid: KeyID}, nil
}

// NewMinter makes a minter with a fresh 2048-bit key (not in any JWKS: the
// "signed by someone else" case).
func NewMinter(kid string) (*Minter, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	return &Minter{Key: k, Kid: kid}, nil
}

func (m *Minter) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

// Claims is a JWT claim set; values are JSON-marshalled as given.
type Claims map[string]any

// Sign makes an RS256 JWT with header {alg, typ, kid} and the claims.
func (m *Minter) Sign(claims Claims) (string, error) {
	return m.SignWithHeader(map[string]any{"alg": "RS256", "typ": "JWT", "kid": m.Kid}, claims)
}

// SignWithHeader signs with RS256 whatever the header says (for hostile
// headers: jku, jwk, a different kid...).
func (m *Minter) SignWithHeader(header map[string]any, claims Claims) (string, error) {
	signing, err := signingInput(header, claims)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, m.Key, crypto.SHA256, sum[:])
	if err != nil {
		return "", err
	}
	return signing + "." + b64(sig), nil
}

// Unsigned makes an alg "none" token with an empty signature.
func Unsigned(claims Claims) string {
	h, _ := json.Marshal(map[string]any{"alg": "none", "typ": "JWT"})
	c, _ := json.Marshal(claims)
	return b64(h) + "." + b64(c) + "."
}

// AccessClaims are the claims of a Cognito user access token for issuer,
// client and user, valid for an hour from now.
func (m *Minter) AccessClaims(issuer, clientID, sub, username string) Claims {
	now := m.now().Unix()
	return Claims{
		"sub": sub, "iss": issuer, "client_id": clientID, "origin_jti": "o-" + sub,
		"event_id": "e-" + sub, "token_use": "access", "scope": "aws.cognito.signin.user.admin",
		"auth_time": now, "exp": now + 3600, "iat": now, "jti": fmt.Sprintf("j-%d", m.now().UnixNano()),
		"username": username,
	}
}

// IDClaims are the claims of a Cognito ID token.
func (m *Minter) IDClaims(issuer, clientID, sub, username, email string) Claims {
	now := m.now().Unix()
	return Claims{
		"sub": sub, "iss": issuer, "aud": clientID, "token_use": "id",
		"cognito:username": username, "email": email, "email_verified": true,
		"auth_time": now, "exp": now + 3600, "iat": now, "jti": fmt.Sprintf("j-%d", m.now().UnixNano()),
	}
}

// ClientCredentialsClaims are the claims of a Cognito client-credentials
// access token: sub = client_id, scopes "{resourceServer}/{scope}", no user.
func (m *Minter) ClientCredentialsClaims(issuer, clientID string, scopes ...string) Claims {
	now := m.now().Unix()
	return Claims{
		"sub": clientID, "iss": issuer, "client_id": clientID, "token_use": "access",
		"scope": strings.Join(scopes, " "), "auth_time": now, "exp": now + 3600, "iat": now,
		"jti": fmt.Sprintf("j-%d", m.now().UnixNano()), "version": 2,
	}
}

// MustSign is Sign that panics; for tables of test tokens.
func (m *Minter) MustSign(c Claims) string {
	t, err := m.Sign(c)
	if err != nil {
		panic(err)
	}
	return t
}

// With returns a copy of c with the given key/value pairs set; a nil value
// deletes the claim.
func (c Claims) With(kv ...any) Claims {
	out := Claims{}
	for k, v := range c {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		k := kv[i].(string)
		if kv[i+1] == nil {
			delete(out, k)
		} else {
			out[k] = kv[i+1]
		}
	}
	return out
}

// Tamper flips one character of the payload, keeping the signature.
func Tamper(token string) string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return token + "x"
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return token + "x"
	}
	var claims map[string]any
	if json.Unmarshal(payload, &claims) == nil {
		if s, ok := claims["sub"].(string); ok {
			claims["sub"] = s + "0"
		} else {
			claims["sub"] = "tampered"
		}
		if p, err := json.Marshal(claims); err == nil {
			parts[1] = b64(p)
			return strings.Join(parts, ".")
		}
	}
	return token + "x"
}

// Payload decodes a JWT's claims without verifying anything.
func Payload(token string) (Claims, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, errors.New("not a JWT")
	}
	data, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, err
	}
	var c Claims
	return c, json.Unmarshal(data, &c)
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// signingInput is the JWS signing input: base64url(header) "." base64url(claims).
func signingInput(header map[string]any, claims Claims) (string, error) {
	h, err := json.Marshal(header)
	if err != nil {
		return "", err
	}
	c, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	return b64(h) + "." + b64(c), nil
}

// SignHS256 signs header and claims with HMAC-SHA256 under secret (for
// algorithm-confusion tests).
func SignHS256(header map[string]any, claims Claims, secret []byte) (string, error) {
	signing, err := signingInput(header, claims)
	if err != nil {
		return "", err
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(signing))
	return signing + "." + b64(mac.Sum(nil)), nil
}

// PublicPEM encodes an RSA public key as PKCS#1 PEM, the way cognito-local's
// public key file holds it.
func PublicPEM(pub crypto.PublicKey) []byte {
	k, ok := pub.(*rsa.PublicKey)
	if !ok {
		return nil
	}
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(k)})
}
