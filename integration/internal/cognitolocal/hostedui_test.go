package cognitolocal

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestHostedUIPatched: the patched hosted UI keeps the nonce, codes are
// single-use, a revoked refresh token is invalid_grant, and /logout only
// redirects to a registered sign-out URL (testenv/check-cognito-local-patch.js
// checks the rest).
func TestHostedUIPatched(t *testing.T) {
	RequirePatched(t)
	s := StartT(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const callback, signedOut = "http://localhost:8443/callback", "http://localhost:8443/signed-out"
	seeded, err := Seed(ctx, s.Client, SeedSpec{
		PoolName: "hosted", ClientName: "web", ClientSecret: true,
		ClientOptions: ClientOptions{
			CallbackURLs: []string{callback}, LogoutURLs: []string{signedOut},
			AllowedOAuthFlows: []string{"code"}, OAuthScopes: []string{"openid", "email"},
		},
		Users: []SeedUser{{Email: "bob@example.com", Password: "Secret-Passw0rd!"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	cl := seeded.Client

	verifier := "verifier-0123456789-0123456789-0123456789-0123456789"
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{
		"client_id": {cl.ClientID}, "redirect_uri": {callback}, "response_type": {"code"}, "scope": {"openid email"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
		"state": {"the-state"}, "nonce": {"the-nonce"},
	}
	authorize := s.URL + "/oauth2/authorize?" + q.Encode()
	if _, err := HostedUISignIn(ctx, authorize, "bob@example.com", "wrong"); err == nil {
		t.Fatal("a wrong password signed in")
	}
	cb, err := HostedUISignIn(ctx, authorize, "bob@example.com", "Secret-Passw0rd!")
	if err != nil {
		t.Fatal(err)
	}
	code := cb.Query().Get("code")
	if !strings.HasPrefix(cb.String(), callback+"?") || code == "" || cb.Query().Get("state") != "the-state" {
		t.Fatalf("callback %s", cb)
	}

	post := func(path string, form url.Values) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(cl.ClientID, cl.ClientSecret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }() // read-only
		data, _ := io.ReadAll(resp.Body)
		var out map[string]any
		if len(data) > 0 {
			if err := json.Unmarshal(data, &out); err != nil {
				t.Fatalf("%s answered %q", path, data)
			}
		}
		return resp.StatusCode, out
	}
	exchange := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {callback},
		"client_id": {cl.ClientID}, "code_verifier": {verifier}}
	status, tok := post("/oauth2/token", exchange)
	if status != 200 {
		t.Fatalf("code exchange: HTTP %d %v", status, tok)
	}
	id, err := Payload(tok["id_token"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if id["nonce"] != "the-nonce" || id["aud"] != cl.ClientID || id["iss"] != s.Issuer(seeded.Pool.ID) {
		t.Fatalf("ID token claims %v", id)
	}
	if status, out := post("/oauth2/token", exchange); status != 400 || out["error"] != "invalid_grant" {
		t.Fatalf("replayed code: HTTP %d %v", status, out)
	}

	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}, "client_id": {cl.ClientID}}
	if status, out := post("/oauth2/token", refresh); status != 200 || out["id_token"] == nil || out["refresh_token"] != nil {
		t.Fatalf("refresh: HTTP %d %v", status, out)
	}
	if status, out := post("/oauth2/revoke", url.Values{"token": {tok["refresh_token"].(string)}, "client_id": {cl.ClientID}}); status != 200 || out != nil {
		t.Fatalf("revoke: HTTP %d %v", status, out)
	}
	if status, out := post("/oauth2/token", refresh); status != 400 || out["error"] != "invalid_grant" {
		t.Fatalf("refresh after revoke: HTTP %d %v", status, out)
	}

	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for uri, want := range map[string]int{signedOut: 302, "http://evil.example/": 400, callback: 400} {
		resp, err := noFollow.Get(s.URL + "/logout?" + url.Values{"client_id": {cl.ClientID}, "logout_uri": {uri}}.Encode())
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close() // read-only
		if resp.StatusCode != want || (want == 302 && resp.Header.Get("Location") != uri) {
			t.Errorf("/logout?logout_uri=%s: HTTP %d Location %q, want %d", uri, resp.StatusCode, resp.Header.Get("Location"), want)
		}
	}
}
