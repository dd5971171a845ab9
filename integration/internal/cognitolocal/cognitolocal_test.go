package cognitolocal

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestSeedLoginAndMint(t *testing.T) {
	s := StartT(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	spec := SeedSpec{PoolName: "test", ClientName: "app", Users: []SeedUser{
		{Email: "alice@example.com", Password: "Secret-Passw0rd!", Groups: []string{"admins"}},
	}}
	seeded, err := Seed(ctx, s.Client, spec)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Seed(ctx, s.Client, spec)
	if err != nil {
		t.Fatalf("second seed: %v", err)
	}
	if again.Pool.ID != seeded.Pool.ID || again.Client.ClientID != seeded.Client.ClientID ||
		again.Users["alice@example.com"].Sub != seeded.Users["alice@example.com"].Sub {
		t.Fatalf("seed is not idempotent: %+v then %+v", seeded, again)
	}
	// Another user seeded into the same group leaves alice in it: creating
	// an existing group is GroupExistsException, as in real Cognito (the
	// testenv patch; cognito-local replaced the group, members and all).
	bob := SeedSpec{PoolName: "test", ClientName: "app", Users: []SeedUser{{Email: "bob@example.com", Password: "Secret-Passw0rd!", Groups: []string{"admins"}}}}
	if _, err := Seed(ctx, s.Client, bob); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateGroup(ctx, seeded.Pool.ID, "admins"); !isKind(err, "GroupExistsException") {
		t.Errorf("CreateGroup of an existing group: %v, want GroupExistsException", err)
	}
	alice := seeded.Users["alice@example.com"]
	if alice.Sub == "" {
		t.Fatalf("no sub for alice: %+v", alice)
	}

	tok, err := s.InitiateAuth(ctx, seeded.Client.ClientID, "alice@example.com", "Secret-Passw0rd!")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.InitiateAuth(ctx, seeded.Client.ClientID, "alice@example.com", "wrong"); err == nil {
		t.Fatal("a wrong password signed in")
	}
	access, err := Payload(tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if access["sub"] != alice.Sub || access["iss"] != s.Issuer(seeded.Pool.ID) || access["token_use"] != "access" ||
		access["client_id"] != seeded.Client.ClientID {
		t.Fatalf("unexpected access token claims %v", access)
	}
	if g, _ := access["cognito:groups"].([]any); len(g) != 1 || g[0] != "admins" {
		t.Fatalf("groups: %v", access["cognito:groups"])
	}
	id, _ := Payload(tok.IDToken)
	if id["aud"] != seeded.Client.ClientID || id["email"] != "alice@example.com" || id["token_use"] != "id" {
		t.Fatalf("unexpected id token claims %v", id)
	}

	keys := fetchJWKS(t, s.JWKSURL(seeded.Pool.ID))
	if err := verifyRS256(keys, tok.AccessToken); err != nil {
		t.Fatalf("cognito-local's own token: %v", err)
	}
	m, err := LoadMinter()
	if err != nil {
		t.Fatal(err)
	}
	minted := m.MustSign(m.ClientCredentialsClaims(s.Issuer(seeded.Pool.ID), seeded.Client.ClientID, "api/read"))
	if err := verifyRS256(keys, minted); err != nil {
		t.Fatalf("minted token does not verify against cognito-local's JWKS: %v", err)
	}
	if err := verifyRS256(keys, Tamper(minted)); err == nil {
		t.Fatal("tampered token verified")
	}
	other, _ := NewMinter(KeyID)
	if err := verifyRS256(keys, other.MustSign(Claims{"sub": "x"})); err == nil {
		t.Fatal("token signed by a foreign key verified")
	}

	secret, err := s.CreateUserPoolClient(ctx, seeded.Pool.ID, "confidential", ClientOptions{GenerateSecret: true})
	if err != nil {
		t.Fatal(err)
	}
	if secret.ClientSecret == "" {
		t.Fatalf("no secret: %+v", secret)
	}
}

func fetchJWKS(t *testing.T, url string) map[string]*rsa.PublicKey {
	t.Helper()
	resp, err := http.Get(url) //nolint:gosec // G107: a loopback URL of cognito-local
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }() // read-only
	var set struct {
		Keys []struct{ Kid, Kty, N, E string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	out := map[string]*rsa.PublicKey{}
	for _, k := range set.Keys {
		n, _ := base64.RawURLEncoding.DecodeString(k.N)
		e, _ := base64.RawURLEncoding.DecodeString(k.E)
		out[k.Kid] = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	}
	if out[KeyID] == nil {
		t.Fatalf("JWKS at %s has no kid %q: %+v", url, KeyID, set)
	}
	return out
}

func verifyRS256(keys map[string]*rsa.PublicKey, token string) error {
	parts := strings.Split(token, ".")
	hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
	var h struct{ Alg, Kid string }
	_ = json.Unmarshal(hb, &h) // a bad header leaves Alg empty: refused below
	k := keys[h.Kid]
	if h.Alg != "RS256" || k == nil {
		return &json.UnsupportedValueError{Str: "alg/kid " + h.Alg + "/" + h.Kid}
	}
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	return rsa.VerifyPKCS1v15(k, crypto.SHA256, sum[:], sig)
}
