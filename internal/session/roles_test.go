package session

import (
	"context"
	"encoding/json"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-cognito/caddy-cognito/internal/jose"
	"github.com/caddy-cognito/caddy-cognito/internal/jose/josetest"
	"github.com/caddy-cognito/caddy-cognito/internal/provider"
	"github.com/caddy-cognito/caddy-cognito/internal/roles"
	"github.com/caddy-cognito/caddy-cognito/internal/seal"
	"github.com/caddy-cognito/caddy-cognito/internal/standin"
	"github.com/caddy-cognito/caddy-cognito/userstore"
	"go.uber.org/zap"
)

// TestRefreshSyncsProviderRoles: a refresh whose new ID token shows
// another group changes the provider roles (the group's role appears,
// the old one goes), the hand-granted role stays, and the refreshed
// session hands the new roles upstream.
func TestRefreshSyncsProviderRoles(t *testing.T) {
	ctx := context.Background()
	ti := josetest.NewIssuer(t)
	keys := standin.KeySet(t, ti.JWKSURL, jose.KeySetOptions{})
	store, err := userstore.Open(ctx, userstore.Options{Path: filepath.Join(t.TempDir(), "s.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	user, err := store.CreateUser(ctx, "test", userstore.NewUser{Username: "alice", Roles: []string{"viewer"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.SyncProviderRoles(ctx, "provider:main", user.ID, []string{"admin"}); err != nil { // signed in as an admin
		t.Fatal(err)
	}
	if user, err = store.GetUserByID(ctx, user.ID); err != nil {
		t.Fatal(err)
	}
	idClaims := ti.IDClaims(map[string]any{"cognito:groups": []string{"editors"}})
	endpoint := standin.NewTokenEndpoint(t, func(url.Values) (int, any) {
		return 200, map[string]any{"access_token": "at-2", "id_token": ti.Sign(idClaims), "token_type": "Bearer", "expires_in": 3600}
	})
	sealer, err := seal.New([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	pp := provider.Pool{Name: "main", Issuer: ti.URL, ClientID: ti.ClientID, ClientSecret: "s", Keys: keys}
	pc := provider.Preset(provider.NewClient(pp, provider.Endpoints{Authorize: endpoint.URL + "/a", Token: endpoint.URL}, nil, nil))
	mp, err := roles.New([]roles.Rule{{Group: "admins", Roles: []string{"admin"}}, {Group: "editors", Roles: []string{"editor"}}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(ti.URL, ti.ClientID)
	cfg.Roles = roles.NewSyncer(mp, store)
	m := New(store, sealer, pc, cfg, zap.NewNop())

	raw, _ := provider.RandomToken(32)
	h := HashID(raw)
	old, _ := json.Marshal(Claims{ID: json.RawMessage(`{"iss":"` + ti.URL + `","sub":"` + idClaims["sub"].(string) + `","cognito:groups":["admins"]}`)})
	now := time.Now()
	if err := store.CreateSession(ctx, userstore.Session{
		IDHash: h, UserID: user.ID, Issuer: ti.URL, Sub: idClaims["sub"].(string), ClientID: ti.ClientID,
		CreatedAt: now, LastSeenAt: now, IdleExpiresAt: now.Add(time.Hour), AbsoluteExpiresAt: now.Add(24 * time.Hour),
		AccessExpiresAt: now.Add(-time.Second), RefreshToken: sealer.Seal([]byte("rt"), []byte(h)), IDTokenClaims: old,
	}); err != nil {
		t.Fatal(err)
	}
	s, err := m.ByID(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.Identity().Roles, ","); got != "editor,viewer" {
		t.Fatalf("refreshed session hands upstream roles %q, want editor,viewer", got)
	}
	u, _ := store.GetUserByID(ctx, user.ID)
	if strings.Join(u.ProviderRoles, ",") != "editor" || strings.Join(u.LocalRoles, ",") != "viewer" {
		t.Fatalf("after the refresh: provider %v local %v", u.ProviderRoles, u.LocalRoles)
	}
}
