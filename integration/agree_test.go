package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/caddy-cognito/caddy-cognito/integration/internal/cognitolocal"
)

// stricterByDesign lists cases where caddy-cognito may refuse a token that
// aws-jwt-verify accepts, with the reason. Any other disagreement fails.
var stricterByDesign = map[string]string{
	// aws-jwt-verify checks exp only when present. Cognito always sets it,
	// and a token that never expires is refused (deny by default).
	"no exp": "a Cognito token without exp is refused",
}

type verdictCase struct {
	Name     string   `json:"name"`
	Token    string   `json:"token"`
	TokenUse string   `json:"tokenUse"`
	ClientID []string `json:"clientId"`
	path     string
}

// TestSecondOpinionAWSJwtVerify feeds the same tokens to Caddy and to AWS's
// aws-jwt-verify and wants the same valid/invalid verdict on each.
func TestSecondOpinionAWSJwtVerify(t *testing.T) {
	s := getStack(t)
	node, testenv := cognitolocal.NodeAndTestenv(t)
	m := s.minter
	aliceTok := s.login(t, s.web.ClientID, alice)
	bobTok := s.login(t, s.web.ClientID, bob)
	strangerTok := s.login(t, s.stranger.ClientID, alice)
	sub := s.users[alice].Sub
	access := m.AccessClaims(s.issuer, s.web.ClientID, sub, s.users[alice].Username)
	id := m.IDClaims(s.issuer, s.web.ClientID, sub, s.users[alice].Username, alice)
	past := time.Now().Add(-2 * time.Hour).Unix()
	future := time.Now().Add(time.Hour).Unix()
	foreign, err := cognitolocal.NewMinter(cognitolocal.KeyID)
	if err != nil {
		t.Fatal(err)
	}
	clients := []string{s.web.ClientID, s.machine.ClientID}
	acc := func(name, tok string) verdictCase {
		return verdictCase{Name: name, Token: tok, TokenUse: "access", ClientID: clients, path: "/api/x"}
	}
	idc := func(name, tok string) verdictCase {
		return verdictCase{Name: name, Token: tok, TokenUse: "id", ClientID: clients, path: "/id/x"}
	}
	cases := []verdictCase{
		acc("valid access (alice, cognito-local)", aliceTok.AccessToken),
		acc("valid access (bob, cognito-local)", bobTok.AccessToken),
		idc("valid id (cognito-local)", aliceTok.IDToken),
		acc("valid access (minted)", m.MustSign(access)),
		idc("valid id (minted)", m.MustSign(id)),
		acc("valid client credentials (minted)", m.MustSign(m.ClientCredentialsClaims(s.issuer, s.machine.ClientID, "api/read"))),
		acc("id token where access is required", aliceTok.IDToken),
		idc("access token where id is required", aliceTok.AccessToken),
		acc("tampered access", cognitolocal.Tamper(aliceTok.AccessToken)),
		idc("tampered id", cognitolocal.Tamper(aliceTok.IDToken)),
		acc("expired access", m.MustSign(access.With("exp", past, "iat", past-3600, "auth_time", past-3600))),
		idc("expired id", m.MustSign(id.With("exp", past, "iat", past-3600, "auth_time", past-3600))),
		acc("wrong client (cognito-local)", strangerTok.AccessToken),
		idc("wrong client id token (cognito-local)", strangerTok.IDToken),
		acc("wrong client (minted)", m.MustSign(access.With("client_id", "someoneelse"))),
		idc("wrong audience (minted)", m.MustSign(id.With("aud", "someoneelse"))),
		acc("wrong token_use value", m.MustSign(access.With("token_use", "refresh"))),
		acc("no token_use", m.MustSign(access.With("token_use", nil))),
		acc("alg none", cognitolocal.Unsigned(access)),
		acc("alg none, signature kept", cognitolocal.Unsigned(access)+"c2ln"),
		acc("foreign key, same kid", foreign.MustSign(access)),
		acc("unknown kid", must(m.SignWithHeader(map[string]any{"alg": "RS256", "typ": "JWT", "kid": "nope"}, access))),
		acc("wrong issuer", m.MustSign(access.With("iss", s.cl.Issuer("local_other")))),
		acc("no issuer", m.MustSign(access.With("iss", nil))),
		acc("not yet valid (nbf)", m.MustSign(access.With("nbf", future))),
		acc("no exp", m.MustSign(access.With("exp", nil))),
		acc("exp as string", m.MustSign(access.With("exp", "9999999999"))),
		acc("HS256 with the public key as secret", hs256Confusion(t, s, access)),
		acc("refresh token", aliceTok.RefreshToken),
		acc("garbage", "a.b.c"),
	}

	// Caddy's verdicts.
	caddyValid := map[string]bool{}
	for _, c := range cases {
		r := s.do(t, c.path, c.Token)
		switch {
		case r.Status == 200 && r.Upstream != nil:
			caddyValid[c.Name] = true
		case r.Status == 401:
			caddyValid[c.Name] = false
		default:
			t.Errorf("%s: unexpected answer from caddy: %s", c.Name, r)
		}
	}

	// aws-jwt-verify's verdicts.
	resp, err := http.Get(s.cl.JWKSURL(s.pool.ID))
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close() // read-only
	in, _ := json.Marshal(map[string]any{"issuer": s.issuer, "jwks": json.RawMessage(jwks), "graceSeconds": 5, "cases": cases})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(testenv, "verify-tokens.js")) //nolint:gosec // G204: node running a script of testenv/
	cmd.Dir = testenv
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("verify-tokens.js: %v\n%s", err, stderr.String())
	}
	var aws []struct {
		Name  string `json:"name"`
		Valid bool   `json:"valid"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(out, &aws); err != nil || len(aws) != len(cases) {
		t.Fatalf("verify-tokens.js printed %q: %v", out, err)
	}
	agree := 0
	for _, a := range aws {
		c, ok := caddyValid[a.Name]
		if !ok {
			continue
		}
		switch {
		case c == a.Valid:
			agree++
			t.Logf("agree   %-40s valid=%-5v  aws: %s", a.Name, c, a.Error)
		case a.Valid && !c:
			if why, ok := stricterByDesign[a.Name]; ok {
				t.Logf("STRICTER (by design: %s) %s: aws-jwt-verify accepts, caddy-cognito refuses", why, a.Name)
			} else {
				t.Errorf("STRICTER %s: aws-jwt-verify accepts it, caddy-cognito refuses it", a.Name)
			}
		default:
			t.Errorf("LAXER %s: caddy-cognito accepts a token aws-jwt-verify refuses (%s)", a.Name, a.Error)
		}
	}
	t.Logf("caddy-cognito and aws-jwt-verify agree on %d of %d tokens", agree, len(cases))
}

// hs256Confusion signs the claims with HS256, keyed by the pool's public key
// in PEM, the classic algorithm-confusion attack.
func hs256Confusion(t *testing.T, s *stack, c cognitolocal.Claims) string {
	t.Helper()
	pub := s.minter.Key.Public()
	tok, err := cognitolocal.SignHS256(map[string]any{"alg": "HS256", "typ": "JWT", "kid": cognitolocal.KeyID}, c, cognitolocal.PublicPEM(pub))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
