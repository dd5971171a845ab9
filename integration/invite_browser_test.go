package integration

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// An invitation from the admin API, sent by email, opened in chromium,
// accepted by a first-time Cognito user; then a second person tries the
// same invitation.
func TestInvitationBrowserAccept(t *testing.T) {
	is := newInviteSite(t, false)
	s := is.s
	noraEmail := uniqueEmail(t, "nora", "example.com")
	nora := cognitoUser(t, s, noraEmail, nil, nil)
	ottoEmail := uniqueEmail(t, "otto", "example.com")
	cognitoUser(t, s, ottoEmail, nil, nil)
	usersBefore := len(is.localUsers(t))

	ans := is.invite(t, map[string]any{"email": noraEmail, "roles": []string{"editor"}, "send": true})
	if !ans.Sent || ans.SendError != "" || ans.Invitation.LastSentAt == nil {
		t.Fatalf("create with send: sent %v, send_error %q, last_sent_at %v", ans.Sent, ans.SendError, ans.Invitation.LastSentAt)
	}
	if got := strings.Join(ans.Invitation.Roles, ","); got != "editor" || ans.Invitation.UserID != "" {
		t.Errorf("invitation roles %q user %q, want editor for a new user", got, ans.Invitation.UserID)
	}
	id := ans.Invitation.ID

	// The invitee reads the email and uses its button.
	link := is.wantInviteMail(t, is.inviteMail(t, noraEmail, 1), noraEmail, ans.AcceptURL)
	if link != ans.AcceptURL {
		t.Fatalf("the email links %s, the admin API said %s", link, ans.AcceptURL)
	}
	secret := secretOf(t, link)

	// Otto got hold of the link too (a forwarded email) and is at the
	// sign-in form before Nora accepts.
	var ottoForm browserReport
	t.Run("someone else opens the link before it is used", func(t *testing.T) {
		shots := artifactDir(t)
		rep := runBrowser(t, nil,
			browserStep{Name: "invitation", Goto: link, Screenshot: filepath.Join(shots, "01-invitation.png")},
			browserStep{Name: "sign-in form", Click: `a:text-is("Sign in to accept")`, WaitURL: s.cl.URL + "/oauth2/authorize",
				Screenshot: filepath.Join(shots, "02-sign-in-form.png")},
		)
		is.wantInvitedPage(t, rep[0], noraEmail)
		ottoForm = rep[1]
	})
	if ottoForm.URL == "" {
		t.FailNow()
	}

	var userID string
	t.Run("the invitee accepts through the link in the email", func(t *testing.T) {
		shots := artifactDir(t)
		rep := runBrowser(t, nil,
			browserStep{Name: "invitation", Goto: link, Screenshot: filepath.Join(shots, "01-invitation.png")},
			browserStep{Name: "sign-in form", Click: `a:text-is("Sign in to accept")`, WaitURL: s.cl.URL + "/oauth2/authorize",
				Screenshot: filepath.Join(shots, "02-sign-in-form.png")},
			browserStep{Name: "accepted", Fill: map[string]string{`input[name="username"]`: noraEmail, `input[name="password"]`: password},
				Click: `button[type="submit"]`, WaitURL: is.base + "/invitations/", Screenshot: filepath.Join(shots, "03-accepted.png")},
			browserStep{Name: "continue", Click: `a:text-is("Continue")`, WaitFor: "pre", Screenshot: filepath.Join(shots, "04-site.png")},
		)
		page, form, accepted, site := rep[0], rep[1], rep[2], rep[3]

		is.wantInvitedPage(t, page, noraEmail)
		// "Sign in to accept" went through cognito_login with the
		// invitation, and on to the hosted UI.
		if len(form.Navigations) < 2 || form.Navigations[0].URL != is.base+signInHref(secret) || form.Navigations[0].Status != http.StatusFound {
			t.Errorf("\"Sign in to accept\" should lead to %s, then the hosted UI:\n%s", signInHref(secret), form)
		}
		if authz, _ := url.Parse(form.URL); authz == nil || authz.Query().Get("client_id") != is.client.ClientID ||
			strings.Contains(form.URL, secret) {
			t.Errorf("the hosted UI request %s: want this site's client, and the invitation secret kept at home", form.URL)
		}
		// Back from the hosted UI: the callback admitted Nora with the
		// invitation and returned her to the invitation, now accepted.
		if accepted.URL != link || accepted.Status != http.StatusOK || !strings.Contains(accepted.Text, inviteAccepted) ||
			!strings.Contains(accepted.Text, "Continue") || len(accepted.Forms) != 0 {
			t.Fatalf("want the accepted page at %s:\n%s", link, accepted)
		}
		var viaCallback bool
		for _, n := range accepted.Navigations {
			viaCallback = viaCallback || strings.HasPrefix(n.URL, is.base+"/auth/callback?") && n.Status == http.StatusSeeOther
		}
		if !viaCallback {
			t.Errorf("the sign-in did not come back through %s/auth/callback:\n%s", is.base, accepted)
		}
		if c, ok := accepted.cookie(loginSessionName); !ok || c.Value == "" || !c.HTTPOnly {
			t.Errorf("after accepting, no HttpOnly session cookie: %+v", accepted.Cookies)
		}

		u := is.localUser(t, noraEmail)
		userID = u.ID
		if !u.Active || !strings.EqualFold(u.Email, noraEmail) || strings.Join(u.Roles, ",") != "editor" ||
			len(u.Identities) != 1 || u.Identities[0].Sub != nora.Sub || u.Identities[0].Issuer != is.issuer {
			t.Errorf("users show %s = %+v, want an active user with role editor linked to %s %s", noraEmail, u, is.issuer, nora.Sub)
		}
		// "Continue" leads into the site, where the upstream sees her roles.
		if site.URL != is.base+"/" {
			t.Errorf("Continue led to %s, want %s/", site.URL, is.base)
		}
		wantIdentityHeaders(t, echoOf(t, site), u.ID, nora.Username, noraEmail, nora.Sub, nil, []string{"editor"})

		r := is.cliOK(t, "users", "show", noraEmail)
		if !strings.Contains(r.stdout, u.ID) || !strings.Contains(r.stdout, "roles: editor") || !strings.Contains(r.stdout, nora.Sub) {
			t.Errorf("users show prints %q, want the user, role editor and the linked sub", r.stdout)
		}
		inv := is.invitation(t, id)
		if inv.Status != "accepted" || inv.AcceptedBy != u.ID || inv.StatusAt.Before(inv.CreatedAt) {
			t.Errorf("after acceptance the admin API shows %+v, want accepted by %s", inv, u.ID)
		}
		if n := is.auditCount(t, "invitation.accept", id); n != 1 {
			t.Errorf("%d invitation.accept audit rows for %s, want 1", n, id)
		}
		if got := len(is.localUsers(t)); got != usersBefore+1 {
			t.Errorf("%d local users after one acceptance, want %d", got, usersBefore+1)
		}
	})
	if userID == "" {
		t.FailNow()
	}

	t.Run("the second person is refused: already used", func(t *testing.T) {
		shots := artifactDir(t)
		rep := runBrowser(t, ottoForm.Cookies,
			// The link itself is now dead, like any other.
			browserStep{Name: "link again", Goto: link, Screenshot: filepath.Join(shots, "01-link-used.png")},
			// Otto's sign-in, started while the invitation was pending,
			// goes on.
			browserStep{Name: "sign-in form", Goto: ottoForm.URL, WaitURL: s.cl.URL + "/oauth2/authorize"},
			browserStep{Name: "refused", Fill: map[string]string{`input[name="username"]`: ottoEmail, `input[name="password"]`: password},
				Click: `button[type="submit"]`, WaitURL: is.base + "/auth/callback", Screenshot: filepath.Join(shots, "02-already-used.png")},
		)
		wantInvalidPage(t, rep[0])
		wantRefusedAtCallback(t, is.base, rep[2], inviteUsed)
		is.wantNoLocalUser(t, ottoEmail)
		if u := is.localUser(t, noraEmail); strings.Join(u.Roles, ",") != "editor" || len(u.Identities) != 1 || u.Identities[0].Sub != nora.Sub {
			t.Errorf("after otto's attempt nora is %+v", u)
		}
		if inv := is.invitation(t, id); inv.Status != "accepted" || inv.AcceptedBy != userID {
			t.Errorf("after otto's attempt the invitation is %+v", inv)
		}
		if got := len(is.localUsers(t)); got != usersBefore+1 {
			t.Errorf("%d local users, want %d", got, usersBefore+1)
		}
	})

	// With the README's log filter, the access log records every visit to
	// the link without its secret.
	t.Run("the access log never holds the secret", func(t *testing.T) {
		var data []byte
		deadline := time.Now().Add(10 * time.Second)
		for { // entries are written once each response is sent: poll
			var err error
			if data, err = os.ReadFile(is.accessLog); err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			if strings.Count(string(data), `"uri":"/invitations/REDACTED/accept"`) >= 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the access log has no two entries for the redacted link:\n%s", data)
			}
			time.Sleep(100 * time.Millisecond) // poll interval
		}
		if strings.Contains(string(data), secret) {
			t.Errorf("the access log holds the invitation's secret %s:\n%s", secret, data)
		}
	})
}

// bind_email: only the invited address may accept.
func TestInvitationBindEmail(t *testing.T) {
	is := newInviteSite(t, true)
	s := is.s
	adaEmail := uniqueEmail(t, "ada", "example.com")
	beaEmail := uniqueEmail(t, "bea", "example.com")
	cognitoUser(t, s, beaEmail, nil, nil)
	ans := is.invite(t, map[string]any{"email": adaEmail, "roles": []string{"editor"}})
	if ans.Sent || ans.Invitation.LastSentAt != nil {
		t.Errorf("an invitation created without send was sent: %+v", ans)
	}

	signIn := func(shots, link, user, waitFor, shot string) []browserReport {
		return runBrowser(t, nil,
			browserStep{Name: "invitation", Goto: link, Screenshot: filepath.Join(shots, "01-invitation.png")},
			browserStep{Name: "sign-in form", Click: `a:text-is("Sign in to accept")`, WaitURL: s.cl.URL + "/oauth2/authorize"},
			browserStep{Name: "back", Fill: map[string]string{`input[name="username"]`: user, `input[name="password"]`: password},
				Click: `button[type="submit"]`, WaitURL: waitFor, Screenshot: filepath.Join(shots, shot)},
		)
	}

	t.Run("another verified address is refused and the invitation stays pending", func(t *testing.T) {
		rep := signIn(artifactDir(t), ans.AcceptURL, beaEmail, is.base+"/auth/callback", "02-email-mismatch.png")
		is.wantInvitedPage(t, rep[0], adaEmail)
		wantRefusedAtCallback(t, is.base, rep[2], inviteMismatch)
		is.wantNoLocalUser(t, beaEmail)
		if inv := is.invitation(t, ans.Invitation.ID); inv.Status != "pending" || inv.AcceptedBy != "" {
			t.Errorf("after a refused sign-in the invitation is %+v, want pending", inv)
		}
		if list := is.invitations(t, "status=pending"); !hasID(list, ans.Invitation.ID) {
			t.Errorf("GET ?status=pending lists %v, want %s", inviteIDs(list), ans.Invitation.ID)
		}
	})

	t.Run("the invited address, unverified, is refused too", func(t *testing.T) {
		// Same address as the invitation, but Cognito has not verified it.
		cognitoUser(t, s, adaEmail, nil, map[string]string{"email_verified": ""})
		rep := signIn(artifactDir(t), ans.AcceptURL, adaEmail, is.base+"/auth/callback", "02-unverified.png")
		wantRefusedAtCallback(t, is.base, rep[2], inviteMismatch)
		is.wantNoLocalUser(t, adaEmail)
		if inv := is.invitation(t, ans.Invitation.ID); inv.Status != "pending" {
			t.Errorf("after a refused sign-in the invitation is %+v, want pending", inv)
		}
	})

	t.Run("a verified invited address accepts the same link", func(t *testing.T) {
		email := uniqueEmail(t, "ada2", "example.com")
		ans2 := is.invite(t, map[string]any{"email": strings.ToUpper(email[:1]) + email[1:], "roles": []string{"viewer"}})
		ada := cognitoUser(t, s, email, nil, nil)
		rep := signIn(artifactDir(t), ans2.AcceptURL, email, is.base+"/invitations/", "02-accepted.png")
		if rep[2].Status != http.StatusOK || !strings.Contains(rep[2].Text, inviteAccepted) {
			t.Fatalf("the invited, verified address (case aside) should accept:\n%s", rep[2])
		}
		u := is.localUser(t, email)
		if strings.Join(u.Roles, ",") != "viewer" || len(u.Identities) != 1 || u.Identities[0].Sub != ada.Sub {
			t.Errorf("accepted user %+v", u)
		}
		if inv := is.invitation(t, ans2.Invitation.ID); inv.Status != "accepted" || inv.AcceptedBy != u.ID {
			t.Errorf("invitation %+v, want accepted by %s", inv, u.ID)
		}
	})
}
