package caddycognito

import (
	"context"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-cognito/caddy-cognito/internal/jose"
)

// verifierFixture is one issuer and key set shared by a test's cases, with
// a fixed clock so that time rules are exact.
type verifierFixture struct {
	ti  *testIssuer
	ks  *jose.KeySet
	now time.Time
}

func newVerifierFixture(t *testing.T) *verifierFixture {
	ti := newTestIssuer(t)
	// A key too small to trust, published before the first fetch.
	ti.Publish(testKey{KID: "small", Priv: testRSAKey(t, 1024, "a")})
	// A key meant for encryption only.
	ti.Publish(testKey{KID: "enc", Priv: testRSAKey(t, 2048, "enc"), JWK: map[string]any{"use": "enc"}})
	return &verifierFixture{ti: ti, ks: ti.KeySet(t, jose.KeySetOptions{}), now: time.Unix(time.Now().Unix(), 0)}
}

func (f *verifierFixture) verifier(mod func(*VerifierConfig)) *Verifier {
	cfg := VerifierConfig{
		Pool: "main", Issuer: f.ti.URL, ClientIDs: []string{"other-client", f.ti.ClientID},
		TokenUse: "access", Now: func() time.Time { return f.now },
	}
	if mod != nil {
		mod(&cfg)
	}
	return NewVerifier(f.ks, cfg)
}

// rel returns a NumericDate d from the fixture's now.
func (f *verifierFixture) rel(d time.Duration) int64 { return f.now.Add(d).Unix() }

func TestVerifyRejects(t *testing.T) {
	f := newVerifierFixture(t)
	ti := f.ti
	kid := ti.Signer().KID
	pub := &ti.Signer().Priv.PublicKey
	der, _ := x509.MarshalPKIXPublicKey(pub)
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	pkcs1PEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(pub)})
	access := func(o map[string]any) map[string]any {
		c := ti.AccessClaims(map[string]any{"exp": f.rel(time.Hour), "iat": f.rel(-time.Minute), "auth_time": f.rel(-time.Minute)})
		return applyOverrides(c, o)
	}
	id := func(o map[string]any) map[string]any {
		c := ti.IDClaims(map[string]any{"exp": f.rel(time.Hour), "iat": f.rel(-time.Minute), "auth_time": f.rel(-time.Minute)})
		return applyOverrides(c, o)
	}
	hdr := func(extra map[string]any) map[string]any {
		return applyOverrides(map[string]any{"alg": "RS256", "kid": kid}, extra)
	}
	good := ti.Sign(access(nil))
	parts := strings.Split(good, ".")
	unsigned := func(header map[string]any, sig string) string {
		return b64url(mustJSON(t, header)) + "." + parts[1] + "." + sig
	}
	hmacToken := func(secret []byte) string {
		input := b64url(mustJSON(t, map[string]any{"alg": "HS256", "kid": kid, "typ": "JWT"})) + "." + parts[1]
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(input))
		return input + "." + b64url(m.Sum(nil))
	}
	// signInput signs exactly the given signing input, however odd.
	signInput := func(input string) string {
		return input + "." + b64url(rsaSignBytes(ti.Signer().Priv, []byte(input)))
	}
	stdToken := func() string {
		enc := base64.RawStdEncoding
		for i := 0; ; i++ {
			h := enc.EncodeToString(mustJSON(t, hdr(map[string]any{"typ": strings.Repeat("?", i%7) + "~~>>"})))
			p := enc.EncodeToString(mustJSON(t, access(map[string]any{"pad": strings.Repeat("?", i) + ">>>"})))
			input := h + "." + p
			sig := enc.EncodeToString(rsaSignBytes(ti.Signer().Priv, []byte(input)))
			tok := input + "." + sig
			if strings.ContainsAny(input, "+/") {
				return tok
			}
		}
	}
	jwkOf := func(k *rsa.PublicKey) map[string]any {
		return testKey{KID: kid, Priv: &rsa.PrivateKey{PublicKey: *k}}.PublicJWK()
	}
	attacker := testRSAKey(t, 2048, "attacker")

	cases := []struct {
		name   string
		token  string
		mod    func(*VerifierConfig)
		reason string
	}{
		// Algorithms.
		{"alg none empty sig", unsigned(hdr(map[string]any{"alg": "none"}), ""), nil, "malformed token"},
		{"alg none sig", unsigned(hdr(map[string]any{"alg": "none"}), parts[2]), nil, "unsupported algorithm"},
		{"alg None sig", unsigned(hdr(map[string]any{"alg": "None"}), parts[2]), nil, "unsupported algorithm"},
		{"alg NONE sig", unsigned(hdr(map[string]any{"alg": "NONE"}), parts[2]), nil, "unsupported algorithm"},
		{"alg nOnE sig", unsigned(hdr(map[string]any{"alg": "nOnE"}), parts[2]), nil, "unsupported algorithm"},
		{"alg nOnE empty sig", unsigned(hdr(map[string]any{"alg": "nOnE"}), ""), nil, "malformed token"},
		{"alg missing", ti.SignWith(map[string]any{"kid": kid}, access(nil)), nil, "unsupported algorithm"},
		{"alg lowercase rs256", ti.SignWith(hdr(map[string]any{"alg": "rs256"}), access(nil)), nil, "unsupported algorithm"},
		{"alg not a string", ti.SignWith(hdr(map[string]any{"alg": []string{"RS256"}}), access(nil)), nil, "malformed token"},
		{"HS256 with PEM public key", hmacToken(pemBytes), nil, "unsupported algorithm"},
		{"HS256 with PKCS1 PEM public key", hmacToken(pkcs1PEM), nil, "unsupported algorithm"},
		{"HS256 with DER public key", hmacToken(der), nil, "unsupported algorithm"},
		{"HS512", ti.SignWith(hdr(map[string]any{"alg": "HS512"}), access(nil)), nil, "unsupported algorithm"},
		{"ES256", ti.SignWith(hdr(map[string]any{"alg": "ES256"}), access(nil)), nil, "unsupported algorithm"},
		{"PS256", ti.SignWith(hdr(map[string]any{"alg": "PS256"}), access(nil)), nil, "unsupported algorithm"},
		{"RS512", ti.SignWith(hdr(map[string]any{"alg": "RS512"}), access(nil)), nil, "unsupported algorithm"},
		// Headers naming keys, extensions. Signed by the real key: the
		// header alone must cause the refusal.
		{"embedded jwk", ti.SignWith(hdr(map[string]any{"jwk": jwkOf(pub)}), access(nil)), nil, "unsupported token header"},
		{"embedded attacker jwk", signRS256(attacker, mustJSON(t, hdr(map[string]any{"jwk": jwkOf(&attacker.PublicKey)})), mustJSON(t, access(nil))), nil, "unsupported token header"},
		{"jku", ti.SignWith(hdr(map[string]any{"jku": ti.JWKSURL}), access(nil)), nil, "unsupported token header"},
		{"x5u", ti.SignWith(hdr(map[string]any{"x5u": "https://evil.example/cert.pem"}), access(nil)), nil, "unsupported token header"},
		{"x5c", ti.SignWith(hdr(map[string]any{"x5c": []string{"MIIB"}}), access(nil)), nil, "unsupported token header"},
		{"crit", ti.SignWith(hdr(map[string]any{"crit": []string{"exp"}, "exp": 1}), access(nil)), nil, "unsupported token header"},
		{"duplicate alg in header", ti.SignRaw([]byte(`{"alg":"none","kid":"`+kid+`","alg":"RS256"}`), mustJSON(t, access(nil))), nil, "malformed token"},
		{"escaped duplicate alg", ti.SignRaw([]byte(`{"alg":"RS256","kid":"`+kid+`","\u0061lg":"none"}`), mustJSON(t, access(nil))), nil, "malformed token"},
		// Bounded before parsing: a huge header (hostile: ~1,500 members)
		// (hostile: 1,000 members in 10 KiB) and one with more members than
		// any real token has.
		{"header of 1000 members", ti.SignRaw(hugeHeader(kid, 1000), mustJSON(t, access(nil))), nil, "token header too large"},
		{"header of 9 members", ti.SignWith(hdr(map[string]any{"a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "f": 6, "typ": "JWT"}), access(nil)), nil, "token header too large"},
		// Keys.
		{"missing kid", ti.SignWith(map[string]any{"alg": "RS256"}, access(nil)), nil, "unknown signing key"},
		{"empty kid", ti.SignWith(hdr(map[string]any{"kid": ""}), access(nil)), nil, "unknown signing key"},
		{"unknown kid", ti.SignWith(hdr(map[string]any{"kid": "nope"}), access(nil)), nil, "unknown signing key"},
		{"other key with real kid", signRS256(attacker, mustJSON(t, hdr(nil)), mustJSON(t, access(nil))), nil, "invalid signature"},
		{"key under 2048 bits", signRS256(testRSAKey(t, 1024, "a"), mustJSON(t, hdr(map[string]any{"kid": "small"})), mustJSON(t, access(nil))), nil, "unknown signing key"},
		{"encryption key", signRS256(testRSAKey(t, 2048, "enc"), mustJSON(t, hdr(map[string]any{"kid": "enc"})), mustJSON(t, access(nil))), nil, "unknown signing key"},
		{"signature truncated", parts[0] + "." + parts[1] + "." + b64url(mustB64(t, parts[2])[:253]), nil, "invalid signature"},
		{"signature cut mid-character", good[:len(good)-1], nil, "malformed token"},
		{"signature with leading zero byte", parts[0] + "." + parts[1] + "." + b64url(append([]byte{0}, mustB64(t, parts[2])...)), nil, "invalid signature"},
		// Longer than the 4096-bit signatures decoded on the stack.
		{"signature of 600 bytes", parts[0] + "." + parts[1] + "." + b64url(append(mustB64(t, parts[2]), make([]byte, 344)...)), nil, "invalid signature"},
		{"payload swapped", parts[0] + "." + b64url(mustJSON(t, access(map[string]any{"username": "mallory"}))) + "." + parts[2], nil, "invalid signature"},
		// Issuer, token_use, clients.
		{"foreign issuer", ti.Sign(access(map[string]any{"iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_OTHER"})), nil, "wrong issuer"},
		{"issuer trailing slash", ti.Sign(access(map[string]any{"iss": ti.URL + "/"})), nil, "wrong issuer"},
		{"issuer missing", ti.Sign(access(map[string]any{"iss": nil})), nil, "wrong issuer"},
		{"issuer not a string", ti.Sign(access(map[string]any{"iss": 1})), nil, "invalid claims"},
		{"wrong token_use", ti.Sign(access(map[string]any{"token_use": "id"})), nil, "wrong token_use"},
		{"missing token_use", ti.Sign(access(map[string]any{"token_use": nil})), nil, "wrong token_use"},
		{"access wrong client_id", ti.Sign(access(map[string]any{"client_id": "evil"})), nil, "client not allowed"},
		{"access only aud", ti.Sign(access(map[string]any{"client_id": nil, "aud": ti.ClientID})), nil, "client not allowed"},
		{"id wrong aud", ti.Sign(id(map[string]any{"aud": "evil"})), idCfg, "client not allowed"},
		{"id missing aud", ti.Sign(id(map[string]any{"aud": nil})), idCfg, "client not allowed"},
		{"id aud not strings", ti.Sign(id(map[string]any{"aud": []any{ti.ClientID, 3}})), idCfg, "invalid claims"},
		{"id multi aud no azp", ti.Sign(id(map[string]any{"aud": []string{"evil", ti.ClientID}})), idCfg, "client not allowed"},
		{"id multi aud wrong azp", ti.Sign(id(map[string]any{"aud": []string{"evil", ti.ClientID}, "azp": "evil"})), idCfg, "client not allowed"},
		{"id azp not ours", ti.Sign(id(map[string]any{"azp": "evil"})), idCfg, "client not allowed"},
		// Time.
		{"exp missing", ti.Sign(access(map[string]any{"exp": nil})), nil, "missing exp"},
		{"exp past", ti.Sign(access(map[string]any{"exp": f.rel(-time.Hour)})), nil, "token expired"},
		{"exp as string", ti.Sign(access(map[string]any{"exp": "9999999999"})), nil, "invalid claims"},
		{"exp negative", ti.Sign(access(map[string]any{"exp": -1})), nil, "invalid claims"},
		{"exp beyond leeway", ti.Sign(access(map[string]any{"exp": f.rel(-11 * time.Second)})), nil, "token expired"},
		{"exp at now, no leeway", ti.Sign(access(map[string]any{"exp": f.rel(0)})), noLeeway, "token expired"},
		{"nbf future", ti.Sign(access(map[string]any{"nbf": f.rel(time.Hour)})), nil, "token not yet valid"},
		{"nbf beyond leeway", ti.Sign(access(map[string]any{"nbf": f.rel(11 * time.Second)})), nil, "token not yet valid"},
		{"nbf as string", ti.Sign(access(map[string]any{"nbf": "1"})), nil, "invalid claims"},
		{"iat future", ti.Sign(access(map[string]any{"iat": f.rel(time.Hour)})), nil, "token not yet valid"},
		{"iat as string", ti.Sign(access(map[string]any{"iat": "1"})), nil, "invalid claims"},
		// Subject.
		{"sub missing", ti.Sign(access(map[string]any{"sub": nil})), nil, "missing subject"},
		{"sub empty", ti.Sign(access(map[string]any{"sub": ""})), nil, "missing subject"},
		{"sub not a string", ti.Sign(access(map[string]any{"sub": 7})), nil, "invalid claims"},
		{"groups not strings", ti.Sign(access(map[string]any{"cognito:groups": "admins"})), nil, "invalid claims"},
		{"duplicate claim", ti.SignRaw(mustJSON(t, hdr(nil)), []byte(strings.Replace(string(mustJSON(t, access(nil))), "{", `{"sub":"root",`, 1))), nil, "malformed token"},
		// Shape.
		{"empty", "", nil, "malformed token"},
		{"garbage", "not a token", nil, "malformed token"},
		{"garbage segments", "abc.def.ghi", nil, "malformed token"},
		{"two segments", parts[0] + "." + parts[1], nil, "malformed token"},
		{"four segments", good + "." + parts[2], nil, "malformed token"},
		{"trailing dot", good + ".", nil, "malformed token"},
		{"empty header", "." + parts[1] + "." + parts[2], nil, "malformed token"},
		{"empty payload", parts[0] + ".." + parts[2], nil, "malformed token"},
		{"padded header", signInput(padB64(t, b64url([]byte(`{"alg":"RS256","kid":"`+kid+`"}`))) + "." + parts[1]), nil, "malformed token"},
		{"padded signature", good + "==", nil, "malformed token"},
		{"padded payload", signInput(parts[0] + "." + padB64(t, parts[1])), nil, "malformed token"},
		{"space in payload", signInput(parts[0] + "." + parts[1][:10] + " " + parts[1][10:]), nil, "malformed token"},
		{"std alphabet in signature", parts[0] + "." + parts[1] + "." + strings.NewReplacer("-", "+", "_", "/").Replace(parts[2]) + "+", nil, "malformed token"},
		{"std alphabet", stdToken(), nil, "malformed token"},
		{"newline in payload", signInput(parts[0] + "." + parts[1][:10] + "\n" + parts[1][10:]), nil, "malformed token"},
		{"leading space", " " + good, nil, "malformed token"},
		{"trailing CRLF", good + "\r\n", nil, "malformed token"},
		{"non-canonical base64", signInput(parts[0] + "." + nonCanonicalB64(t, oddLength(mustJSON(t, access(nil))))), nil, "malformed token"},
		{"header is array", signInput(b64url([]byte(`["RS256"]`)) + "." + parts[1]), nil, "malformed token"},
		{"header is string", signInput(b64url([]byte(`"RS256"`)) + "." + parts[1]), nil, "malformed token"},
		{"header bad JSON", signInput(b64url([]byte(`{"alg":"RS256","kid":"`+kid+`"`)) + "." + parts[1]), nil, "malformed token"},
		{"payload is array", ti.SignRaw(mustJSON(t, hdr(nil)), []byte(`[{"sub":"x"}]`)), nil, "malformed token"},
		{"payload is null", ti.SignRaw(mustJSON(t, hdr(nil)), []byte(`null`)), nil, "malformed token"},
		{"payload bad JSON", ti.SignRaw(mustJSON(t, hdr(nil)), []byte(`{"sub":`)), nil, "malformed token"},
		{"oversize default", ti.Sign(access(map[string]any{"pad": strings.Repeat("x", 17<<10)})), nil, "token too large"},
		{"oversize configured", good, func(c *VerifierConfig) { c.MaxTokenSize = 200 }, "token too large"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := f.verifier(tc.mod)
			id, err := v.Verify(context.Background(), tc.token)
			if err == nil {
				t.Fatalf("accepted: %+v", id)
			}
			var te *TokenError
			if !errors.As(err, &te) {
				t.Fatalf("error %T %v is not a *TokenError", err, err)
			}
			if te.Reason != tc.reason {
				t.Errorf("reason %q, want %q", te.Reason, tc.reason)
			}
			if te.Unavailable {
				t.Errorf("Unavailable set for a bad token")
			}
			if strings.Contains(te.Error(), tc.token[:min(len(tc.token), 20)]) && len(tc.token) > 20 {
				t.Errorf("error echoes the token")
			}
		})
	}
	// The base case is valid, so every refusal above is the rule's doing.
	if _, err := f.verifier(nil).Verify(context.Background(), good); err != nil {
		t.Fatalf("base token refused: %v", err)
	}
	// The member bound leaves room: eight members pass.
	eight := ti.SignWith(hdr(map[string]any{"a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "typ": "JWT"}), access(nil))
	if _, err := f.verifier(nil).Verify(context.Background(), eight); err != nil {
		t.Fatalf("header of 8 members refused: %v", err)
	}
}

// hugeHeader is a JOSE header with n members besides alg and kid: what an
// attacker sends to make duplicate-member detection quadratic.
func hugeHeader(kid string, n int) []byte {
	var b strings.Builder
	b.WriteString(`{"alg":"RS256","kid":"` + kid + `"`)
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, `,"%s":0`, strconv.FormatInt(int64(i), 36))
	}
	b.WriteString("}")
	return []byte(b.String())
}

// oddLength pads JSON with trailing spaces so its length is not a multiple of 3.
func oddLength(b []byte) []byte {
	for len(b)%3 != 1 {
		b = append(b, ' ')
	}
	return b
}

func idCfg(c *VerifierConfig)    { c.TokenUse = "id" }
func noLeeway(c *VerifierConfig) { c.Leeway = -1 }

func TestVerifyAccepts(t *testing.T) {
	f := newVerifierFixture(t)
	ti := f.ti
	times := map[string]any{"exp": f.rel(time.Hour), "iat": f.rel(-time.Minute), "auth_time": f.rel(-time.Minute)}
	withTimes := func(c map[string]any, o map[string]any) map[string]any {
		return applyOverrides(applyOverrides(c, times), o)
	}
	exp := time.Unix(f.rel(time.Hour), 0)
	base := func() *Identity {
		return &Identity{Pool: "main", Issuer: ti.URL, Subject: "5f1c2a3e-0000-4000-8000-000000000001", ExpiresAt: exp}
	}

	cases := []struct {
		name   string
		claims map[string]any
		mod    func(*VerifierConfig)
		want   func(id *Identity)
	}{
		{"access", withTimes(ti.AccessClaims(nil), nil), nil, func(id *Identity) {
			id.Username, id.ClientID, id.TokenUse = "alice", ti.ClientID, "access"
			id.Groups, id.Scopes = []string{"admins", "staff"}, []string{"openid", "email", "profile"}
		}},
		{"client credentials", withTimes(ti.AccessClaims(nil), map[string]any{
			"sub": ti.ClientID, "username": nil, "cognito:groups": nil, "scope": "orders/read orders/write",
		}), nil, func(id *Identity) {
			id.Subject, id.ClientID, id.TokenUse = ti.ClientID, ti.ClientID, "access"
			id.Scopes = []string{"orders/read", "orders/write"}
		}},
		{"id", withTimes(ti.IDClaims(nil), nil), idCfg, func(id *Identity) {
			id.Username, id.Email, id.EmailVerified, id.ClientID, id.TokenUse = "alice", "alice@example.com", true, ti.ClientID, "id"
			id.Groups = []string{"admins"}
		}},
		{"id email_verified string, multi aud with azp", withTimes(ti.IDClaims(nil), map[string]any{
			"email_verified": "true", "aud": []string{"someone-else", ti.ClientID}, "azp": ti.ClientID, "cognito:groups": nil,
		}), idCfg, func(id *Identity) {
			id.Username, id.Email, id.EmailVerified, id.ClientID, id.TokenUse = "alice", "alice@example.com", true, ti.ClientID, "id"
		}},
		// An unverified email is not the user's for sure: it is left out.
		{"id email not verified, aud array", withTimes(ti.IDClaims(nil), map[string]any{
			"email_verified": "false", "aud": []string{ti.ClientID}, "cognito:groups": nil,
		}), idCfg, func(id *Identity) {
			id.Username, id.ClientID, id.TokenUse = "alice", ti.ClientID, "id"
		}},
		{"id email_verified false (bool)", withTimes(ti.IDClaims(nil), map[string]any{
			"email_verified": false, "cognito:groups": nil,
		}), idCfg, func(id *Identity) {
			id.Username, id.ClientID, id.TokenUse = "alice", ti.ClientID, "id"
		}},
		{"id email_verified missing", withTimes(ti.IDClaims(nil), map[string]any{
			"email_verified": nil, "cognito:groups": nil,
		}), idCfg, func(id *Identity) {
			id.Username, id.ClientID, id.TokenUse = "alice", ti.ClientID, "id"
		}},
		{"exp within leeway", withTimes(ti.AccessClaims(nil), map[string]any{"exp": f.rel(-9 * time.Second), "cognito:groups": nil, "scope": nil}), nil, func(id *Identity) {
			id.Username, id.ClientID, id.TokenUse = "alice", ti.ClientID, "access"
			id.ExpiresAt = time.Unix(f.rel(-9*time.Second), 0)
		}},
		{"nbf and iat within leeway", withTimes(ti.AccessClaims(nil), map[string]any{"nbf": f.rel(9 * time.Second), "iat": f.rel(9 * time.Second), "cognito:groups": nil, "scope": nil}), nil, func(id *Identity) {
			id.Username, id.ClientID, id.TokenUse = "alice", ti.ClientID, "access"
		}},
		{"fractional exp", withTimes(ti.AccessClaims(nil), map[string]any{"exp": float64(f.rel(time.Hour)) + 0.5, "cognito:groups": nil, "scope": nil}), nil, func(id *Identity) {
			id.Username, id.ClientID, id.TokenUse = "alice", ti.ClientID, "access"
			id.ExpiresAt = exp.Add(500 * time.Millisecond)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			token := ti.Sign(tc.claims)
			got, err := f.verifier(tc.mod).Verify(context.Background(), token)
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			want := base()
			tc.want(want)
			wantPayload := mustB64(t, strings.Split(token, ".")[1])
			if string(got.RawClaims) != string(wantPayload) {
				t.Errorf("RawClaims differ from the signed payload")
			}
			want.RawClaims = got.RawClaims
			if !reflect.DeepEqual(fieldsOf(got), fieldsOf(want)) {
				t.Errorf("identity\n got %v\nwant %v", fieldsOf(got), fieldsOf(want))
			}
			if s, ok := got.Claim("iss"); !ok || s != ti.URL {
				t.Errorf("Claim(iss) = %q, %v", s, ok)
			}
		})
	}
}

// fieldsOf lists an identity's exported data for comparison (Identity
// holds a sync.Once, so it is not compared whole).
func fieldsOf(id *Identity) []any {
	return []any{id.Pool, id.Issuer, id.Subject, id.Username, id.Email, id.EmailVerified, id.Groups,
		id.Scopes, id.ClientID, id.TokenUse, id.ExpiresAt.UnixNano(), id.UserID, id.Roles, string(id.RawClaims)}
}

// TestVerifyLargestStackSignature: a 4096-bit key's signature (512
// bytes) fills the verifier's stack buffer exactly and verifies.
func TestVerifyLargestStackSignature(t *testing.T) {
	f := newVerifierFixture(t)
	f.ti.Publish(testKey{KID: "big", Priv: testRSAKey(t, 4096, "big")})
	claims := applyOverrides(f.ti.AccessClaims(nil), map[string]any{"exp": f.rel(time.Hour)})
	tok := signRS256(testRSAKey(t, 4096, "big"), mustJSON(t, map[string]any{"alg": "RS256", "kid": "big"}), mustJSON(t, claims))
	if id, err := f.verifier(nil).Verify(context.Background(), tok); err != nil || id.Username != "alice" {
		t.Fatalf("4096-bit key: %v, %+v", err, id)
	}
}

func TestVerifyNoKeySet(t *testing.T) {
	v := NewVerifier(nil, VerifierConfig{Issuer: "x", TokenUse: "access"})
	ti := newTestIssuer(t)
	_, err := v.Verify(context.Background(), ti.Sign(ti.AccessClaims(nil)))
	var te *TokenError
	if !errors.As(err, &te) || !te.Unavailable {
		t.Fatalf("want Unavailable, got %v", err)
	}
}

func mustB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return b
}

// padB64 adds the '=' padding that base64url in JWS must not have.
func padB64(t *testing.T, s string) string {
	if len(s)%4 == 0 {
		t.Fatalf("%d characters need no padding", len(s))
	}
	for len(s)%4 != 0 {
		s += "="
	}
	return s
}

// nonCanonicalB64 encodes b with the unused low bits of the last character
// set: lax decoders read the same bytes, strict ones refuse it.
func nonCanonicalB64(t *testing.T, b []byte) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	if len(b)%3 == 0 {
		t.Fatalf("%d bytes leave no unused bits", len(b))
	}
	s := b64url(b)
	last := strings.IndexByte(alphabet, s[len(s)-1])
	return s[:len(s)-1] + string(alphabet[last|1])
}

// clock is a settable time source for cache tests.
type clock struct{ ns atomic.Int64 }

func (c *clock) Now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *clock) Set(t time.Time)     { c.ns.Store(t.UnixNano()) }
func (c *clock) Add(d time.Duration) { c.ns.Add(int64(d)) }
func newClock(t time.Time) *clock    { c := &clock{}; c.Set(t); return c }

func TestVerifyCache(t *testing.T) {
	ti := newTestIssuer(t)
	ks := ti.KeySet(t, jose.KeySetOptions{})
	start := time.Unix(time.Now().Unix(), 0)
	exp := start.Add(time.Hour)
	token := ti.Sign(ti.AccessClaims(map[string]any{"exp": exp.Unix(), "iat": start.Unix()}))
	newV := func(c *clock, size int) *Verifier {
		return NewVerifier(ks, VerifierConfig{Issuer: ti.URL, ClientIDs: []string{ti.ClientID}, TokenUse: "access", Now: c.Now, CacheSize: size})
	}
	ctx := context.Background()

	t.Run("hit returns the same identity without verifying again", func(t *testing.T) {
		v := newV(newClock(start), 0)
		a, err := v.Verify(ctx, token)
		if err != nil {
			t.Fatal(err)
		}
		b, err := v.Verify(ctx, token)
		if err != nil {
			t.Fatal(err)
		}
		if a != b || v.sigChecks.Load() != 1 {
			t.Fatalf("same=%v checks=%d, want same identity and one check", a == b, v.sigChecks.Load())
		}
	})
	t.Run("never served at or past exp", func(t *testing.T) {
		c := newClock(exp.Add(-time.Second))
		v := newV(c, 0)
		mustVerify(t, v, token)
		mustVerify(t, v, token)
		if n := v.sigChecks.Load(); n != 1 {
			t.Fatalf("checks before exp = %d, want 1", n)
		}
		c.Set(exp) // within leeway: valid, but verified afresh and not cached
		mustVerify(t, v, token)
		mustVerify(t, v, token)
		if n := v.sigChecks.Load(); n != 3 {
			t.Fatalf("checks at exp = %d, want 3", n)
		}
		c.Set(exp.Add(defaultLeeway))
		var te *TokenError
		if _, err := v.Verify(ctx, token); !errors.As(err, &te) || te.Reason != "token expired" {
			t.Fatalf("after exp+leeway: %v, want token expired", err)
		}
	})
	t.Run("failures are not cached", func(t *testing.T) {
		v := newV(newClock(start), 0)
		bad := token[:len(token)-8] + "AAAAAAAA"
		for range 3 {
			if _, err := v.Verify(ctx, bad); err == nil {
				t.Fatal("bad token accepted")
			}
		}
		if v.sigChecks.Load() != 3 || v.cache.len() != 0 {
			t.Fatalf("checks=%d cached=%d, want 3 and 0", v.sigChecks.Load(), v.cache.len())
		}
	})
	// The cache key hashes only the token's tail (its signature): a token
	// that reuses a cached token's signature under another payload lands
	// on that entry, and must be verified in full and refused, while the
	// cached token stays a hit.
	t.Run("a cached signature under another payload", func(t *testing.T) {
		v := newV(newClock(start), 0)
		mustVerify(t, v, token)
		other := ti.Sign(ti.AccessClaims(map[string]any{"exp": exp.Unix(), "iat": start.Unix(), "username": "mallory"}))
		parts, otherParts := strings.Split(token, "."), strings.Split(other, ".")
		forged := parts[0] + "." + otherParts[1] + "." + parts[2]
		if v.cache.key(forged) != v.cache.key(token) {
			t.Fatal("test premise: the forged token should share the cached token's key")
		}
		if id, err := v.Verify(ctx, forged); err == nil {
			t.Fatalf("forged token accepted as %q", id.Username)
		}
		if id := mustVerify(t, v, token); id.Username != "alice" || v.sigChecks.Load() != 2 {
			t.Fatalf("after the forgery: %q, %d checks; want alice and 2 (one for each token)", id.Username, v.sigChecks.Load())
		}
	})
	t.Run("disabled", func(t *testing.T) {
		v := newV(newClock(start), -1)
		mustVerify(t, v, token)
		mustVerify(t, v, token)
		if v.sigChecks.Load() != 2 {
			t.Fatalf("checks=%d, want 2", v.sigChecks.Load())
		}
	})
	tokens := make([]string, 120)
	for i := range tokens {
		tokens[i] = ti.Sign(ti.AccessClaims(map[string]any{"exp": exp.Unix(), "iat": start.Unix(), "jti": fmt.Sprint(i)}))
	}
	t.Run("bounded", func(t *testing.T) {
		for _, size := range []int{1, 7, 50, 600} {
			v := newV(newClock(start), size)
			for _, tok := range tokens {
				mustVerify(t, v, tok)
			}
			if n := v.cache.len(); n > size || n == 0 {
				t.Errorf("size %d: %d entries", size, n)
			}
		}
	})
	t.Run("expired entries are evicted first", func(t *testing.T) {
		c := newClock(start)
		v := newV(c, 2)
		short := ti.Sign(ti.AccessClaims(map[string]any{"exp": start.Add(time.Minute).Unix(), "iat": start.Unix()}))
		mustVerify(t, v, short)
		mustVerify(t, v, tokens[0])
		c.Add(2 * time.Minute)
		mustVerify(t, v, tokens[1]) // full: the expired one must go
		before := v.sigChecks.Load()
		mustVerify(t, v, tokens[0])
		mustVerify(t, v, tokens[1])
		if v.sigChecks.Load() != before {
			t.Fatalf("live entries were evicted while an expired one was there")
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		v := newV(newClock(start), 40)
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 200 {
					tok := tokens[(g*31+i)%len(tokens)]
					id, err := v.Verify(ctx, tok)
					if err != nil || id.Subject == "" {
						t.Errorf("verify: %v", err)
						return
					}
					_, _ = id.Claim("jti")
				}
			}()
		}
		wg.Wait()
		if n := v.cache.len(); n > 40 {
			t.Fatalf("%d entries, bound 40", n)
		}
	})
}

func mustVerify(t *testing.T, v *Verifier, token string) *Identity {
	t.Helper()
	id, err := v.Verify(context.Background(), token)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return id
}

// FuzzVerify feeds mutated tokens to the verifier: it must never panic,
// and it must accept only the very token that was signed: not another
// payload, nor another spelling of the same one (padding, CR or LF, the
// standard alphabet, non-canonical last characters), which would get a
// cache entry of its own.
func FuzzVerify(f *testing.F) {
	ti := newTestIssuer(f)
	good := ti.Sign(ti.AccessClaims(nil))
	v := NewVerifier(ti.KeySet(f, jose.KeySetOptions{Cooldown: time.Hour}), VerifierConfig{
		Issuer: ti.URL, ClientIDs: []string{ti.ClientID}, TokenUse: "access", CacheSize: -1,
	})
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add("e30.e30.e30")
	// Spellings a lax decoder reads as the signed token.
	dot := strings.IndexByte(good, '.')
	for _, spelled := range []string{good + "\n", good + "\r\n", good[:dot+5] + "\n" + good[dot+5:], good + "=", "\n" + good} {
		f.Add(spelled)
	}
	f.Fuzz(func(t *testing.T, token string) {
		id, err := v.Verify(context.Background(), token)
		if err == nil && string(id.RawClaims) != string(mustB64(t, strings.Split(good, ".")[1])) {
			t.Fatalf("accepted a payload that was never signed: %q", token)
		}
		if err == nil && token != good {
			t.Fatalf("accepted another spelling of the signed token: %q", token)
		}
	})
}
