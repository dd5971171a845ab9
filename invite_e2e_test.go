package caddycognito

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/caddy-cognito/caddy-cognito/invitations"
	"github.com/caddy-cognito/caddy-cognito/userstore"
)

// adminJSON calls the in-process Caddy's admin API and decodes the answer
// into out.
func adminJSON(t *testing.T, method, path string, body any, out any) int {
	t.Helper()
	status, raw := adminRaw(t, method, path, body)
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %d %s", method, path, status, raw)
		}
	}
	return status
}

type createdInvitation struct {
	Invitation struct{ ID, Email, Status string }
	AcceptURL  string `json:"accept_url"`
}

func invitationStatus(t *testing.T, id string) string {
	var inv struct{ Status string }
	adminJSON(t, "GET", "/cognito/invitations/"+id, nil, &inv)
	return inv.Status
}

// TestInvitationFlow: an invitation made through the admin API is shown
// (and not changed) by a GET, carried through sign-in, accepted for a
// first-time identity with its roles, and refused on a second use; with
// bind_email, another address is refused.
func TestInvitationFlow(t *testing.T) {
	s := startLoginSiteWith(t, `invitations {
				base_url `+loginSiteURL+`
				bind_email
			}`, `cognito_invitations`, `admit invited`)

	var created createdInvitation
	if code := adminJSON(t, "POST", "/cognito/invitations", map[string]any{"email": "alice@example.com", "roles": []string{"editor"}}, &created); code != 201 {
		t.Fatalf("create: %d %+v", code, created)
	}
	if !strings.HasPrefix(created.AcceptURL, loginSiteURL+"/invitations/") || created.Invitation.Status != "pending" {
		t.Fatalf("created %+v", created)
	}

	// A GET (a person, or a mail scanner) only shows the page.
	b := newBrowser(t)
	for i := 0; i < 3; i++ {
		resp, page := get(t, b, created.AcceptURL)
		if resp.StatusCode != 200 || !strings.Contains(page, "alice@example.com") || !strings.Contains(page, "Sign in to accept") {
			t.Fatalf("invitation page: %d\n%.800s", resp.StatusCode, page)
		}
	}
	if st := invitationStatus(t, created.Invitation.ID); st != "pending" {
		t.Fatalf("after GETs the invitation is %s", st)
	}
	// Unknown and revoked links look the same before sign-in.
	var other createdInvitation
	adminJSON(t, "POST", "/cognito/invitations", map[string]any{"email": "zed@example.com"}, &other)
	adminJSON(t, "POST", "/cognito/invitations/"+other.Invitation.ID+"/revoke", nil, nil)
	r1, p1 := get(t, b, other.AcceptURL)
	r2, p2 := get(t, b, loginSiteURL+"/invitations/"+strings.Repeat("x", 43)+"/accept")
	if r1.StatusCode != 404 || r2.StatusCode != 404 || p1 != p2 {
		t.Errorf("revoked %d and unknown %d links differ before sign-in", r1.StatusCode, r2.StatusCode)
	}

	// Sign in to accept: a first-time identity, admitted by the invitation.
	_, page := get(t, b, created.AcceptURL)
	link := regexpHref(t, page, "Sign in to accept")
	resp, page := get(t, b, loginSiteURL+link)
	resp, page = signIn(t, b, resp, page, "alice")
	if resp.StatusCode != 200 || !strings.Contains(page, "accepted the invitation") {
		t.Fatalf("after sign-in: %d at %s\n%.800s", resp.StatusCode, resp.Request.URL, page)
	}
	if _, page = get(t, b, loginSiteURL+"/work"); page != "upstream ok" {
		t.Fatalf("upstream after accepting: %.300s", page)
	}
	h, _ := s.upstream.seen()
	if h.Get("X-Auth-Roles") != "editor" || h.Get("X-Auth-Username") != "alice" {
		t.Errorf("upstream headers after accepting: roles %q, username %q", h.Get("X-Auth-Roles"), h.Get("X-Auth-Username"))
	}
	if st := invitationStatus(t, created.Invitation.ID); st != "accepted" {
		t.Errorf("invitation is %s, want accepted", st)
	}

	// A second use, by another first-time identity: refused, and it says why.
	b2 := newBrowser(t)
	resp, page = get(t, b2, loginSiteURL+"/auth/login?next="+url.QueryEscape("/")+"&invitation="+url.QueryEscape(strings.TrimSuffix(strings.TrimPrefix(created.AcceptURL, loginSiteURL+"/invitations/"), "/accept")))
	resp, page = signIn(t, b2, resp, page, "bob")
	if resp.StatusCode != 403 || !strings.Contains(page, "already been used") {
		t.Errorf("second use: %d\n%.600s", resp.StatusCode, page)
	}

	// bind_email: carol@example.com signs in with dave's invitation.
	var forDave createdInvitation
	adminJSON(t, "POST", "/cognito/invitations", map[string]any{"email": "dave@example.com"}, &forDave)
	b3 := newBrowser(t)
	_, page = get(t, b3, forDave.AcceptURL)
	resp, page = get(t, b3, loginSiteURL+regexpHref(t, page, "Sign in to accept"))
	resp, page = signIn(t, b3, resp, page, "carol")
	if resp.StatusCode != 403 || !strings.Contains(page, "another email address") {
		t.Errorf("bind_email mismatch: %d\n%.600s", resp.StatusCode, page)
	}
	if st := invitationStatus(t, forDave.Invitation.ID); st != "pending" {
		t.Errorf("a refused acceptance changed the invitation to %s", st)
	}
}

// regexpHref returns the href of the link whose text is text.
func regexpHref(t *testing.T, page, text string) string {
	t.Helper()
	i := strings.Index(page, ">"+text+"<")
	j := strings.LastIndex(page[:max(i, 0)], `href="`)
	if i < 0 || j < 0 {
		t.Fatalf("no link %q in\n%.800s", text, page)
	}
	href := page[j+len(`href="`):]
	href = href[:strings.IndexByte(href, '"')]
	return strings.ReplaceAll(href, "&amp;", "&")
}

// TestInvitationSweep: when Caddy starts with invitations configured, the
// sweep marks invitations past their expiry as expired (then hourly).
func TestInvitationSweep(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "cognito.db")
	past := func() time.Time { return time.Now().Add(-2 * time.Hour) }
	store, err := userstore.Open(context.Background(), userstore.Options{Path: dbPath, Now: past})
	if err != nil {
		t.Fatal(err)
	}
	inv, _, err := invitations.New(store, past).Create(context.Background(), "test", invitations.CreateRequest{Email: "old@example.com", TTL: time.Hour})
	if cerr := store.Close(); cerr != nil {
		t.Fatal(cerr)
	}
	if err != nil {
		t.Fatal(err)
	}
	tester := caddytest.NewTester(t)
	tester.InitServer(fmt.Sprintf(`
	{
		admin localhost:2999
		http_port 9080
		https_port 9443
		skip_install_trust
		cognito {
			store sqlite %s
			pool main {
				issuer https://issuer.example.com
				client_id app
			}
			invitations {
				base_url http://localhost:9080
			}
		}
	}
	http://localhost:9080 {
		respond "ok"
	}`, dbPath), "caddyfile")
	deadline := time.Now().Add(10 * time.Second)
	for invitationStatus(t, inv.ID) != "expired" {
		if time.Now().After(deadline) {
			t.Fatalf("invitation still %s 10s after start", invitationStatus(t, inv.ID))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
