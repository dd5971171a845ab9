package integration

import (
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
)

// Mail scanners and previews follow links: looking at an invitation link,
// with or without a session, changes nothing. Before sign-in a dead link
// does not say why it is dead.
func TestInvitationGetChangesNothing(t *testing.T) {
	is := newInviteSite(t, false)
	s := is.s
	pEmail := uniqueEmail(t, "pat", "example.com")
	ans := is.invite(t, map[string]any{"email": pEmail, "roles": []string{"editor"}})
	link, id := ans.AcceptURL, ans.Invitation.ID

	before := is.invitation(t, id)
	usersBefore := len(is.localUsers(t))
	auditBefore := is.auditCount(t, "", "")

	// unchanged checks that nothing about the store moved.
	unchanged := func(t *testing.T) {
		t.Helper()
		if after := is.invitation(t, id); after.Status != "pending" || !after.StatusAt.Equal(before.StatusAt) || after.AcceptedBy != "" {
			t.Errorf("after looking at the link the invitation is %+v, was %+v", after, before)
		}
		if !hasID(is.invitations(t, "status=pending"), id) {
			t.Errorf("GET /cognito/invitations?status=pending no longer lists %s", id)
		}
		if n := len(is.localUsers(t)); n != usersBefore {
			t.Errorf("%d local users after looking at a link, want %d", n, usersBefore)
		}
		is.wantNoLocalUser(t, pEmail)
		if n := is.auditCount(t, "", ""); n != auditBefore {
			t.Errorf("%d audit rows after looking at a link, want %d", n, auditBefore)
		}
		if n := is.auditCount(t, "invitation.accept", id); n != 0 {
			t.Errorf("%d invitation.accept audit rows for %s", n, id)
		}
	}

	t.Run("plain HTTP: GET and HEAD, no session", func(t *testing.T) {
		c := newWebClient(t)
		for i := 0; i < 3; i++ {
			r := c.navigate(link)
			if r.Status != http.StatusOK || !strings.Contains(string(r.Body), "This invitation is for "+pEmail+". Sign in to accept it.") {
				t.Fatalf("GET %d of the link: %s", i+1, r)
			}
			if ck := r.Header.Values("Set-Cookie"); len(ck) != 0 {
				t.Errorf("GET of the link sets cookies: %q", ck)
			}
			if cc := r.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
				t.Errorf("GET of the link: Cache-Control %q, want no-store", cc)
			}
			// The page's URL holds the secret: its links and forms must not
			// send it on as Referer (to the hosted UI, or anywhere else).
			if rp := r.Header.Get("Referrer-Policy"); rp != "no-referrer" {
				t.Errorf("GET of the link: Referrer-Policy %q, want no-referrer", rp)
			}
			if csp := r.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") {
				t.Errorf("GET of the link: Content-Security-Policy %q", csp)
			}
		}
		// A link scanner: no browser headers at all.
		if r := c.api(http.MethodGet, link, nil); r.Status != http.StatusOK {
			t.Errorf("GET of the link as a script: %s", r)
		}
		req, _ := http.NewRequest(http.MethodHead, link, nil)
		if r := c.do(req); r.Status != http.StatusOK || len(r.Body) != 0 {
			t.Errorf("HEAD of the link: %s", r)
		}
		unchanged(t)
	})

	t.Run("chromium, no sign-in", func(t *testing.T) {
		shots := artifactDir(t)
		rep := runBrowser(t, nil,
			browserStep{Name: "first visit", Goto: link, Screenshot: filepath.Join(shots, "01-invitation.png")},
			browserStep{Name: "reload", Goto: link},
			browserStep{Name: "again", Goto: link, Screenshot: filepath.Join(shots, "02-invitation-again.png")},
		)
		for _, r := range rep {
			is.wantInvitedPage(t, r, pEmail)
		}
		unchanged(t)
	})

	t.Run("POST without a session signs in first and changes nothing", func(t *testing.T) {
		c := newWebClient(t)
		r := c.postForm(link, url.Values{"csrf": {"x"}})
		if loc := r.Header.Get("Location"); r.Status != http.StatusSeeOther || loc != signInHref(secretOf(t, link)) {
			t.Errorf("POST to the link without a session: %s Location %q, want 303 to %s", r, loc, signInHref(secretOf(t, link)))
		}
		unchanged(t)
	})

	// A signed-in local user (Quinn, admitted by an earlier invitation)
	// is invited to more: the page offers a button, and only its POST
	// accepts.
	qEmail := uniqueEmail(t, "quinn", "example.com")
	quinn := cognitoUser(t, s, qEmail, nil, nil)
	var quinnCookies []browserCookie
	var quinnID string
	t.Run("a first invitation makes Quinn a user", func(t *testing.T) {
		first := is.invite(t, map[string]any{"email": qEmail, "roles": []string{"editor"}})
		shots := artifactDir(t)
		rep := runBrowser(t, nil,
			browserStep{Name: "invitation", Goto: first.AcceptURL},
			browserStep{Name: "sign-in form", Click: `a:text-is("Sign in to accept")`, WaitURL: s.cl.URL + "/oauth2/authorize"},
			browserStep{Name: "accepted", Fill: map[string]string{`input[name="username"]`: qEmail, `input[name="password"]`: password},
				Click: `button[type="submit"]`, WaitURL: is.base + "/invitations/", Screenshot: filepath.Join(shots, "01-accepted.png")},
		)
		if !strings.Contains(rep[2].Text, inviteAccepted) {
			t.Fatalf("want the accepted page:\n%s", rep[2])
		}
		quinnCookies, quinnID = rep[2].Cookies, is.localUser(t, qEmail).ID
	})
	if quinnID == "" {
		t.FailNow()
	}
	more := is.invite(t, map[string]any{"email": qEmail, "user": quinnID, "roles": []string{"reviewer"}})
	if more.Invitation.UserID != quinnID {
		t.Fatalf("an invitation for user %s answered user_id %q", quinnID, more.Invitation.UserID)
	}
	moreBefore := is.invitation(t, more.Invitation.ID)

	t.Run("signed in: GET shows a form with csrf and changes nothing", func(t *testing.T) {
		shots := artifactDir(t)
		rep := runBrowser(t, quinnCookies,
			browserStep{Name: "invitation", Goto: more.AcceptURL, Screenshot: filepath.Join(shots, "01-accept-form.png")},
			browserStep{Name: "again", Goto: more.AcceptURL},
		)
		for _, r := range rep {
			f, ok := r.postForm()
			csrf, _ := f.field("csrf")
			if r.Status != http.StatusOK || !ok || len(csrf) < 32 || !strings.Contains(r.Text, "Accept the invitation") ||
				!strings.Contains(r.Text, "This invitation is for "+qEmail) {
				t.Errorf("want the invitation page with an \"Accept the invitation\" form:\n%s\nforms %+v", r, r.Forms)
			}
			if a, _ := url.Parse(f.Action); a == nil || a.Path != "/invitations/"+secretOf(t, more.AcceptURL)+"/accept" {
				t.Errorf("the form posts to %q", f.Action)
			}
		}
		if inv := is.invitation(t, more.Invitation.ID); inv.Status != "pending" || !inv.StatusAt.Equal(moreBefore.StatusAt) {
			t.Errorf("after a signed-in GET the invitation is %+v", inv)
		}
		if u := is.localUser(t, quinnID); strings.Join(u.Roles, ",") != "editor" {
			t.Errorf("after a signed-in GET quinn has roles %q", u.Roles)
		}

		// A POST from elsewhere (no csrf from the page) is refused.
		c := newWebClient(t)
		sess, _ := rep[0].cookie(loginSessionName)
		c.setCookie(is.base, loginSessionName, sess.Value)
		for _, csrf := range []string{"", "forged"} {
			r := c.postForm(more.AcceptURL, url.Values{"csrf": {csrf}})
			if r.Status != http.StatusForbidden || r.Upstream != nil {
				t.Errorf("POST with csrf %q: %s, want 403", csrf, r)
			}
		}
		if inv := is.invitation(t, more.Invitation.ID); inv.Status != "pending" {
			t.Errorf("after forged POSTs the invitation is %+v", inv)
		}
	})

	t.Run("signed in: the button accepts", func(t *testing.T) {
		shots := artifactDir(t)
		rep := runBrowser(t, quinnCookies,
			browserStep{Name: "invitation", Goto: more.AcceptURL},
			browserStep{Name: "accept", Click: `button:text-is("Accept the invitation")`, WaitFor: "pre", Screenshot: filepath.Join(shots, "01-after-accept.png")},
		)
		wantIdentityHeaders(t, echoOf(t, rep[1]), quinnID, quinn.Username, qEmail, quinn.Sub, nil, []string{"editor", "reviewer"})
		if inv := is.invitation(t, more.Invitation.ID); inv.Status != "accepted" || inv.AcceptedBy != quinnID {
			t.Errorf("after the button the invitation is %+v", inv)
		}
	})

	t.Run("dead links look alike before sign-in", func(t *testing.T) {
		revoked := is.invite(t, map[string]any{"email": uniqueEmail(t, "rev", "example.com")})
		if status, raw := is.admin(t, http.MethodPost, "/cognito/invitations/"+revoked.Invitation.ID+"/revoke", nil); status != http.StatusOK {
			t.Fatalf("revoke: HTTP %d %s", status, raw)
		}
		resent := is.invite(t, map[string]any{"email": uniqueEmail(t, "res", "example.com")})
		if status, raw := is.admin(t, http.MethodPost, "/cognito/invitations/"+resent.Invitation.ID+"/resend", map[string]any{"send": false}); status != http.StatusOK {
			t.Fatalf("resend: HTTP %d %s", status, raw)
		}
		dead := map[string]string{
			"unknown":    is.base + "/invitations/" + strings.Repeat("A", 43) + "/accept",
			"malformed":  is.base + "/invitations/nope/accept",
			"revoked":    revoked.AcceptURL,
			"superseded": resent.AcceptURL, // the link before resend
			"used":       more.AcceptURL,
		}
		c := newWebClient(t)
		var first result
		var firstName string
		for name, u := range dead {
			r := c.navigate(u)
			if r.Status != http.StatusNotFound || !strings.Contains(string(r.Body), inviteInvalid) || strings.Contains(string(r.Body), "Sign in") {
				t.Errorf("%s link: %s, want the 404 page", name, r)
				continue
			}
			if firstName == "" {
				first, firstName = r, name
				continue
			}
			if string(r.Body) != string(first.Body) || r.Header.Get("Content-Type") != first.Header.Get("Content-Type") ||
				r.Header.Get("Cache-Control") != first.Header.Get("Cache-Control") {
				t.Errorf("the %s link's page differs from the %s link's:\n%s\n---\n%s", name, firstName, r.Body, first.Body)
			}
		}
		shots := artifactDir(t)
		rep := runBrowser(t, nil,
			browserStep{Name: "revoked", Goto: dead["revoked"], Screenshot: filepath.Join(shots, "01-revoked.png")},
			browserStep{Name: "unknown", Goto: dead["unknown"], Screenshot: filepath.Join(shots, "02-unknown.png")},
			browserStep{Name: "used", Goto: dead["used"], Screenshot: filepath.Join(shots, "03-used.png")},
		)
		for _, r := range rep {
			wantInvalidPage(t, r)
			if r.Text != rep[0].Text || r.Title != rep[0].Title {
				t.Errorf("chromium shows the %s link differently from the revoked one:\n%s\n---\n%s", r.Name, r, rep[0])
			}
		}
		// The revoked invitation stays revoked; looking did not revive it.
		if inv := is.invitation(t, revoked.Invitation.ID); inv.Status != "revoked" {
			t.Errorf("revoked invitation now %+v", inv)
		}
	})
}
