package caddycognito

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-cognito/caddy-cognito/internal/provider"
	"github.com/caddy-cognito/caddy-cognito/internal/session"
	"github.com/caddy-cognito/caddy-cognito/internal/web"
	"github.com/caddy-cognito/caddy-cognito/userstore"
)

func TestInviteSetupBaseURL(t *testing.T) {
	same := func(s string) string { return s }
	for _, tc := range []struct{ base, wantErr string }{
		{"https://app.example.com", ""},
		{"https://app.example.com/", ""},
		{"http://localhost:9080", ""},
		{"", "base_url is required"},
		{"https://app.example.com/app", `base_url "https://app.example.com/app" must be scheme://host[:port] only`},
		{"https://app.example.com?x=1", "must be scheme://host[:port] only"},
		// A fragment put every link's path and secret after '#': the links
		// opened the home page, whose scripts could read the secret.
		{"https://app.example.com#x", "must be scheme://host[:port] only"},
		{"https://u@app.example.com", "must be scheme://host[:port] only"},
		{"http://app.example.com", "invitations: base_url: must use https (plain http is allowed only on a loopback host)"},
		{"http://app.localhost:9080", "must use https"},
	} {
		s, err := newInviteSetup(InvitationsConfig{BaseURL: tc.base}, same)
		if tc.wantErr == "" {
			if err != nil || s.acceptURL("S") != strings.TrimRight(tc.base, "/")+"/invitations/S/accept" {
				t.Errorf("base_url %q: %v", tc.base, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("base_url %q: err = %v; want %q", tc.base, err, tc.wantErr)
		}
	}
}

// TestInvitationSessionOfItsPoolsOnly: the invitation pages read sessions
// from the store, and only a session of one of the handler's pools, with
// that pool's app client, counts: a cookie carried from another pool's
// site (or another client's) must not accept an invitation.
func TestInvitationSessionOfItsPoolsOnly(t *testing.T) {
	ctx := context.Background()
	store, err := userstore.Open(ctx, userstore.Options{Path: filepath.Join(t.TempDir(), "i.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = store.Close() }() // a throwaway store
	u, err := store.CreateUser(ctx, "test", userstore.NewUser{Username: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	setup, err := newInviteSetup(InvitationsConfig{BaseURL: "http://127.0.0.1:8080"}, func(s string) string { return s })
	if err != nil {
		t.Fatal(err)
	}
	i := &InvitationsHandler{setup: setup, owners: []sessionOwner{{"https://staff.example", "staff-app"}, {"https://partners.example", "partner-app"}}}
	for _, c := range []struct {
		issuer, client string
		counts         bool
	}{
		{"https://staff.example", "staff-app", true},
		{"https://partners.example", "partner-app", true},
		{"https://customers.example", "staff-app", false},
		{"https://staff.example", "other-app", false},
		{"https://partners.example", "staff-app", false}, // one pool's issuer with another's client
	} {
		raw, _ := provider.RandomToken(32)
		now := time.Now()
		if err := store.CreateSession(ctx, userstore.Session{
			IDHash: session.HashID(raw), UserID: u.ID, Issuer: c.issuer, Sub: "s", ClientID: c.client,
			CreatedAt: now, IdleExpiresAt: now.Add(time.Hour), AbsoluteExpiresAt: now.Add(time.Hour), AccessExpiresAt: now.Add(time.Hour),
		}); err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest("GET", "/invitations/x/accept", nil)
		r.AddCookie(&http.Cookie{Name: web.SessionCookieBase, Value: raw}) //nolint:gosec // G124: a request cookie
		if s, _ := i.session(ctx, r, store); (s != nil) != c.counts {
			t.Errorf("session of %s / %s: signed in = %v, want %v", c.issuer, c.client, s != nil, c.counts)
		}
	}
}
