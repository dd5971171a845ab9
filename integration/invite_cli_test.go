package integration

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
)

var (
	cliLink = regexp.MustCompile(`http://127\.0\.0\.1:\d+/invitations/[A-Za-z0-9_-]{43}/accept`)
	cliID   = regexp.MustCompile(`\binv_[0-9a-f]{24}\b`)
)

// `caddy cognito invitations …` in another process, next to the running
// server, on the same Caddyfile.
func TestInvitationCLI(t *testing.T) {
	is := newInviteSite(t, false)
	email := uniqueEmail(t, "cleo", "example.com")
	other := uniqueEmail(t, "dora", "example.com")

	// create --send prints the invitation, its link and that it was sent.
	r := is.cliOK(t, "invitations", "create", "--email", email, "--role", "editor", "--role", "viewer", "--send")
	links, ids := cliLink.FindAllString(r.stdout, -1), cliID.FindAllString(r.stdout, -1)
	if len(links) != 1 || len(ids) != 1 || !strings.Contains(r.stdout, email) || !strings.Contains(r.stdout, "pending") ||
		!strings.Contains(r.stdout, "sent to "+email) || !strings.Contains(r.stdout, "editor") || !strings.Contains(r.stdout, "viewer") {
		t.Fatalf("invitations create --send printed:\n%s\nwant the id, email, pending, roles, the link and \"sent to %s\"", r.stdout, email)
	}
	link, id := links[0], ids[0]
	if got := is.wantInviteMail(t, is.inviteMail(t, email, 1), email, link); got != link {
		t.Errorf("the email links %s, the CLI printed %s", got, link)
	}
	r = is.cliOK(t, "invitations", "create", "--email", other, "--expires", "72h", "--json")
	var otherAns inviteAnswer
	mappedJSON(t, "create --json", []byte(r.stdout), &otherAns)
	if otherAns.Sent || otherAns.Invitation.Status != "pending" || !cliLink.MatchString(otherAns.AcceptURL) {
		t.Errorf("create --json (no --send) answered %s", r.stdout)
	}
	if d := otherAns.Invitation.ExpiresAt.Sub(otherAns.Invitation.CreatedAt); d.Hours() != 72 {
		t.Errorf("--expires 72h made an invitation valid for %v", d)
	}
	if c := is.plainStatus(t, link); c != http.StatusOK {
		t.Errorf("the printed link answers %d", c)
	}

	t.Run("list and show", func(t *testing.T) {
		r := is.cliOK(t, "invitations", "list")
		if !strings.Contains(r.stdout, id) || !strings.Contains(r.stdout, otherAns.Invitation.ID) || cliLink.MatchString(r.stdout) {
			t.Errorf("list printed %q: want both invitations and never a link", r.stdout)
		}
		var list []inviteJSON
		mappedJSON(t, "list --json", []byte(is.cliOK(t, "invitations", "list", "--status", "pending", "--json").stdout), &list)
		if !hasID(list, id) || !hasID(list, otherAns.Invitation.ID) {
			t.Errorf("list --status pending = %v", inviteIDs(list))
		}
		mappedJSON(t, "list --email --json", []byte(is.cliOK(t, "invitations", "list", "--email", strings.ToUpper(email), "--json").stdout), &list)
		if len(list) != 1 || list[0].ID != id {
			t.Errorf("list --email %s = %v, want only %s", email, inviteIDs(list), id)
		}
		mappedJSON(t, "list --status accepted --json", []byte(is.cliOK(t, "invitations", "list", "--status", "accepted", "--json").stdout), &list)
		if len(list) != 0 {
			t.Errorf("list --status accepted = %v, want none", inviteIDs(list))
		}
		if r := is.cli(t, "invitations", "list", "--status", "bogus"); r.code != 2 {
			t.Errorf("list --status bogus: want exit 2:\n%s", r)
		}

		r = is.cliOK(t, "invitations", "show", id)
		if !strings.Contains(r.stdout, id) || !strings.Contains(r.stdout, email) || !strings.Contains(r.stdout, "pending") || cliLink.MatchString(r.stdout) {
			t.Errorf("show printed %q", r.stdout)
		}
		var inv inviteJSON
		mappedJSON(t, "show --json", []byte(is.cliOK(t, "invitations", "show", id, "--json").stdout), &inv)
		if inv.ID != id || inv.Email != email || strings.Join(inv.Roles, ",") != "editor,viewer" || inv.LastSentAt == nil ||
			!strings.HasPrefix(inv.CreatedBy, "cli") {
			t.Errorf("show --json = %+v", inv)
		}
		if r := is.cli(t, "invitations", "show", "inv_000000000000000000000000"); r.code != 3 {
			t.Errorf("show of an unknown id: want exit 3:\n%s", r)
		}
	})

	var newLink string
	t.Run("resend makes a new link and the old one dies", func(t *testing.T) {
		r := is.cliOK(t, "invitations", "resend", id, "--no-send")
		quiet := cliLink.FindAllString(r.stdout, -1)
		if len(quiet) != 1 || quiet[0] == link || strings.Contains(r.stdout, "sent to") {
			t.Fatalf("resend --no-send printed %q: want one new link, not sent", r.stdout)
		}
		r = is.cliOK(t, "invitations", "resend", id)
		sent := cliLink.FindAllString(r.stdout, -1)
		if len(sent) != 1 || sent[0] == quiet[0] || sent[0] == link || !strings.Contains(r.stdout, "sent to "+email) {
			t.Fatalf("resend printed %q: want another new link, sent", r.stdout)
		}
		newLink = sent[0]
		if got := is.wantInviteMail(t, is.inviteMail(t, email, 2), email, newLink); got != newLink {
			t.Errorf("the second email links %s, want %s", got, newLink)
		}
		if all, _ := is.mail.To(t.Context(), email); len(all) != 2 {
			t.Errorf("%d emails to %s after create --send, resend --no-send and resend, want 2", len(all), email)
		}
		for _, old := range []string{link, quiet[0]} {
			if c := is.plainStatus(t, old); c != http.StatusNotFound {
				t.Errorf("a link replaced by resend answers %d, want 404", c)
			}
		}
		if c := is.plainStatus(t, newLink); c != http.StatusOK {
			t.Errorf("the new link answers %d", c)
		}
		if r := is.cli(t, "invitations", "resend", "inv_000000000000000000000000"); r.code != 3 {
			t.Errorf("resend of an unknown id: want exit 3:\n%s", r)
		}
	})

	t.Run("revoke", func(t *testing.T) {
		r := is.cliOK(t, "invitations", "revoke", id)
		if !strings.Contains(r.stdout, id) || !strings.Contains(r.stdout, "revoked") {
			t.Errorf("revoke printed %q", r.stdout)
		}
		if inv := is.invitation(t, id); inv.Status != "revoked" {
			t.Errorf("after revoke the admin API shows %+v", inv)
		}
		if newLink != "" {
			if c := is.plainStatus(t, newLink); c != http.StatusNotFound {
				t.Errorf("a revoked link answers %d, want 404", c)
			}
		}
		if r := is.cli(t, "invitations", "revoke", id); r.code != 4 {
			t.Errorf("revoking a revoked invitation: want exit 4:\n%s", r)
		}
		if r := is.cli(t, "invitations", "resend", id); r.code != 4 {
			t.Errorf("resending a revoked invitation: want exit 4:\n%s", r)
		}
		if r := is.cli(t, "invitations", "revoke", "inv_000000000000000000000000"); r.code != 3 {
			t.Errorf("revoking an unknown id: want exit 3:\n%s", r)
		}
		if r := is.cli(t, "invitations", "revoke"); r.code != 2 {
			t.Errorf("revoke without an id: want exit 2:\n%s", r)
		}
	})

	t.Run("clean", func(t *testing.T) {
		r := is.cliOK(t, "invitations", "clean")
		if !strings.Contains(r.stdout, "removed 0") {
			t.Errorf("clean (keep 720h) printed %q, want removed 0: the invitation was revoked just now", r.stdout)
		}
		is.cliOK(t, "invitations", "show", id)
		r = is.cliOK(t, "invitations", "clean", "--keep", "0s")
		if !strings.Contains(r.stdout, "removed 1") {
			t.Errorf("clean --keep 0s printed %q, want removed 1", r.stdout)
		}
		if r := is.cli(t, "invitations", "show", id); r.code != 3 {
			t.Errorf("a cleaned invitation is still there:\n%s", r)
		}
		if inv := is.invitation(t, otherAns.Invitation.ID); inv.Status != "pending" {
			t.Errorf("clean touched the pending invitation: %+v", inv)
		}
		if r := is.cli(t, "invitations", "clean", "--keep", "soon"); r.code != 2 {
			t.Errorf("clean --keep soon: want exit 2:\n%s", r)
		}
		// The admin API agrees.
		status, raw := is.admin(t, http.MethodPost, "/cognito/invitations/clean", map[string]string{"keep": "720h"})
		var removed struct{ Removed *int }
		if mappedJSON(t, "clean answer", raw, &removed); status != http.StatusOK || removed.Removed == nil || *removed.Removed != 0 {
			t.Errorf("POST /cognito/invitations/clean: HTTP %d %s, want removed 0", status, raw)
		}
	})
}

// plainStatus is the status a GET of u answers without a session.
func (is *inviteSite) plainStatus(t *testing.T, u string) int {
	t.Helper()
	return newWebClient(t).navigate(u).Status
}
