package session

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/caddy-cognito/caddy-cognito/internal/identity"
	"github.com/caddy-cognito/caddy-cognito/internal/provider"
	"go.uber.org/zap"
)

// TestForwardTokenKeptSealedAndRefreshed: with ForwardToken "access" a
// sign-in keeps the access token sealed with the session (never in the
// clear), the live session hands it out, and a refresh replaces it; with
// none configured nothing is kept.
func TestForwardTokenKeptSealedAndRefreshed(t *testing.T) {
	f := newSessionFixture(t, func(url.Values) (int, any) {
		return 200, map[string]any{"access_token": "at-2-refreshed", "token_type": "Bearer", "expires_in": 3600}
	})
	ctx := context.Background()
	claims := json.RawMessage(`{"iss":"https://issuer.example","sub":"s-1","cognito:username":"alice"}`)
	idc, err := identity.ParseIDClaims(claims)
	if err != nil {
		t.Fatal(err)
	}
	signIn := func(m *Manager, expiry time.Time) string {
		t.Helper()
		raw, err := m.Create(ctx, httptest.NewRequest("GET", "/auth/callback", nil), f.user,
			&provider.TokenSet{AccessToken: "at-1-signin", RefreshToken: "rt-1", IDToken: "id-1", Expiry: expiry, IDClaims: claims}, "", idc)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}

	// none configured: nothing kept, nothing handed out
	raw := signIn(f.m, time.Now().Add(time.Hour))
	if sess, _ := f.store.GetSession(ctx, HashID(raw)); sess.ForwardToken != nil {
		t.Fatal("a session without forward_token keeps a token")
	}
	if s, err := f.m.ByID(ctx, raw); err != nil || s.ForwardToken() != "" {
		t.Fatalf("ForwardToken() = %q, %v; want none", s.ForwardToken(), err)
	}

	cfg := testConfig("https://issuer.example", "rp")
	cfg.ForwardToken = "access"
	m := New(f.store, f.m.sealer, f.m.Provider("main"), cfg, zap.NewNop())
	raw = signIn(m, time.Now().Add(time.Hour))
	sess, err := f.store.GetSession(ctx, HashID(raw))
	if err != nil {
		t.Fatal(err)
	}
	if len(sess.ForwardToken) == 0 || bytes.Contains(sess.ForwardToken, []byte("at-1-signin")) {
		t.Fatalf("stored forward token %q: want ciphertext", sess.ForwardToken)
	}
	if _, err := m.sealer.Open(sess.ForwardToken, []byte(HashID(raw))); err == nil {
		t.Fatal("the forwarded token opens as a refresh token would: purposes not separated")
	}
	s, err := m.ByID(ctx, raw)
	if err != nil || s.ForwardToken() != "at-1-signin" {
		t.Fatalf("ForwardToken() = %q, %v; want the sign-in's access token", s.ForwardToken(), err)
	}

	// a refresh replaces it
	raw = signIn(m, time.Now().Add(-time.Minute))
	if s, err = m.ByID(ctx, raw); err != nil || s.ForwardToken() != "at-2-refreshed" {
		t.Fatalf("after a refresh ForwardToken() = %q, %v; want at-2-refreshed", s.ForwardToken(), err)
	}
	m2 := New(f.store, f.m.sealer, f.m.Provider("main"), cfg, zap.NewNop()) // another instance: from the store
	if s, err = m2.ByID(ctx, raw); err != nil || s.ForwardToken() != "at-2-refreshed" {
		t.Fatalf("read back from the store: %q, %v", s.ForwardToken(), err)
	}
}
