package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-cognito/caddy-cognito/integration/internal/cognitolocal"
	"github.com/caddy-cognito/caddy-cognito/integration/internal/maildev"
)

// Invitations end to end: the xcaddy-built binary with `cognito_invitations`
// and `cognito_login { admit invited }`, invitation emails through a real
// SMTP server (maildev, read back through its REST API), cognito-local's
// hosted UI and chromium.
//
//	invite_test.go          the site, the admin API, the mail, the store
//	invite_browser_test.go  the email link in chromium: accept, second use, bind_email
//	invite_get_test.go      looking at a link changes nothing; dead links look alike
//	invite_cli_test.go      `caddy cognito invitations …`

// The invitation pages' texts (invite_config.go's defaults) as a person
// reads them.
const (
	inviteInvalid  = "This invitation link is not valid. It may have expired or been used already. Ask the person who invited you for a new one."
	inviteUsed     = "This invitation has already been used."
	inviteMismatch = "This invitation is for another email address. Sign in with the account of the invited address."
	inviteAccepted = "You have accepted the invitation."
	inviteFrom     = "no-reply@example.com"
	inviteFromName = "Example Site"
)

// inviteCaddyfile: one site that serves invitation links, signs people in
// with cognito-local's hosted UI and admits a first-time identity only with
// an invitation. @BIND_EMAIL@ is "bind_email" or nothing.
const inviteCaddyfile = `{
	admin {$CADDY_ADMIN}
	auto_https off
	cognito {
		store sqlite @DB@
		pool main {
			issuer @ISSUER@
			client_id @CLIENT_ID@
			client_secret @CLIENT_SECRET@
			domain @DOMAIN@
		}
		invitations {
			base_url http://127.0.0.1:@PORT@
			@BIND_EMAIL@
			mail {
				host 127.0.0.1
				port @SMTP_PORT@
				tls none
				from "Example Site <no-reply@example.com>"
			}
		}
	}
}

http://127.0.0.1:@PORT@ {
	# The README's access log for invitation links: their secret (in the
	# link's path, in the sign-in link's query, in a redirect to the link)
	# is replaced.
	log {
		output file @ACCESS_LOG@
		format filter {
			wrap json
			fields {
				request>uri regexp "(/invitations/|%2[Ff]invitations%2[Ff]|invitation=)[A-Za-z0-9_-]+" "${1}REDACTED"
				request>headers>Referer regexp "(/invitations/|%2[Ff]invitations%2[Ff]|invitation=)[A-Za-z0-9_-]+" "${1}REDACTED"
				resp_headers>Location regexp "(/invitations/|%2[Ff]invitations%2[Ff]|invitation=)[A-Za-z0-9_-]+" "${1}REDACTED"
			}
		}
	}
	cognito_invitations
	cognito_login {
		secret @SECRET@
		admit invited
	}
	reverse_proxy @UPSTREAM@
}
`

// inviteSite is a Caddy on inviteCaddyfile with its own maildev.
type inviteSite struct {
	*loginSite
	mail *maildev.Server
	site string // the site's name on pages and in emails: host:port of base_url
	// accessLog is Caddy's access log of the site (JSON lines).
	accessLog string
}

func newInviteSite(t *testing.T, bindEmail bool) *inviteSite {
	t.Helper()
	s := getStack(t)
	cognitolocal.RequirePatched(t) // the hosted UI must echo the nonce
	mail := maildev.StartT(t)
	port, err := cognitolocal.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	client := newAppClient(t, s, "invite-", fmt.Sprintf("http://127.0.0.1:%d", port))
	bind := ""
	if bindEmail {
		bind = "bind_email"
	}
	accessLog := filepath.Join(t.TempDir(), "access.log")
	ls := newLoginSite(t, s, port, inviteCaddyfile, map[string]string{
		"@ISSUER@": s.issuer, "@CLIENT_ID@": client.ClientID, "@CLIENT_SECRET@": client.ClientSecret,
		"@DOMAIN@": s.cl.URL, "@SMTP_PORT@": strconv.Itoa(mail.SMTPPort), "@BIND_EMAIL@": bind,
		"@ACCESS_LOG@": accessLog,
	})
	ls.client, ls.issuer = client, s.issuer
	return &inviteSite{loginSite: ls, mail: mail, site: fmt.Sprintf("127.0.0.1:%d", port), accessLog: accessLog}
}

// ---- the admin API ----

// inviteJSON is an invitation as the admin API and the CLI show it.
type inviteJSON struct {
	ID         string     `json:"id"`
	Email      string     `json:"email"`
	UserID     string     `json:"user_id"`
	Roles      []string   `json:"roles"`
	CreatedBy  string     `json:"created_by"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  time.Time  `json:"expires_at"`
	Status     string     `json:"status"`
	StatusAt   time.Time  `json:"status_at"`
	StatusNote string     `json:"status_note"`
	AcceptedBy string     `json:"accepted_by"`
	LastSentAt *time.Time `json:"last_sent_at"`
}

// inviteAnswer is what create and resend answer.
type inviteAnswer struct {
	Invitation inviteJSON `json:"invitation"`
	AcceptURL  string     `json:"accept_url"`
	Sent       bool       `json:"sent"`
	SendError  string     `json:"send_error"`
}

func (is *inviteSite) admin(t *testing.T, method, path string, body any) (int, []byte) {
	t.Helper()
	return (&mappedSite{caddy: is.caddy}).admin(t, method, path, body)
}

// invite creates an invitation through the admin API (201 required).
func (is *inviteSite) invite(t *testing.T, body map[string]any) inviteAnswer {
	t.Helper()
	status, raw := is.admin(t, http.MethodPost, "/cognito/invitations", body)
	if status != http.StatusCreated {
		t.Fatalf("POST /cognito/invitations %v: HTTP %d %s", body, status, raw)
	}
	var a inviteAnswer
	mappedJSON(t, "create answer", raw, &a)
	if a.Invitation.Status != "pending" || !strings.EqualFold(a.Invitation.Email, fmt.Sprint(body["email"])) ||
		!regexp.MustCompile(`^inv_[0-9a-f]{24}$`).MatchString(a.Invitation.ID) {
		t.Fatalf("create answered %s", raw)
	}
	if !linkPattern.MatchString(a.AcceptURL) || !strings.HasPrefix(a.AcceptURL, is.base+"/invitations/") {
		t.Fatalf("accept_url %q is not %s/invitations/<secret>/accept", a.AcceptURL, is.base)
	}
	return a
}

// invitation reads one invitation through the admin API.
func (is *inviteSite) invitation(t *testing.T, id string) inviteJSON {
	t.Helper()
	status, raw := is.admin(t, http.MethodGet, "/cognito/invitations/"+id, nil)
	if status != http.StatusOK {
		t.Fatalf("GET /cognito/invitations/%s: HTTP %d %s", id, status, raw)
	}
	var inv inviteJSON
	mappedJSON(t, "invitation", raw, &inv)
	return inv
}

// invitations lists invitations through the admin API (query e.g. "status=pending").
func (is *inviteSite) invitations(t *testing.T, query string) []inviteJSON {
	t.Helper()
	status, raw := is.admin(t, http.MethodGet, "/cognito/invitations?"+query, nil)
	if status != http.StatusOK {
		t.Fatalf("GET /cognito/invitations?%s: HTTP %d %s", query, status, raw)
	}
	var list []inviteJSON
	mappedJSON(t, "invitation list", raw, &list)
	return list
}

func inviteIDs(list []inviteJSON) []string {
	var ids []string
	for _, inv := range list {
		ids = append(ids, inv.ID)
	}
	return ids
}

func hasID(list []inviteJSON, id string) bool {
	for _, inv := range list {
		if inv.ID == id {
			return true
		}
	}
	return false
}

// localUsers lists the store's users through the admin API.
func (is *inviteSite) localUsers(t *testing.T) []mappedUser {
	t.Helper()
	status, raw := is.admin(t, http.MethodGet, "/cognito/users", nil)
	if status != http.StatusOK {
		t.Fatalf("GET /cognito/users: HTTP %d %s", status, raw)
	}
	var list []mappedUser
	mappedJSON(t, "user list", raw, &list)
	return list
}

// wantNoLocalUser: nobody in the store has that email or username.
func (is *inviteSite) wantNoLocalUser(t *testing.T, email string) {
	t.Helper()
	if r := is.cli(t, "users", "show", email); r.code != 3 {
		t.Errorf("%s became a local user:\n%s", email, r)
	}
	for _, u := range is.localUsers(t) {
		if strings.EqualFold(u.Email, email) || strings.EqualFold(u.Username, email) {
			t.Errorf("%s became a local user: %+v", email, u)
		}
	}
}

// ---- links and mail ----

var linkPattern = regexp.MustCompile(`^http://127\.0\.0\.1:\d+/invitations/([A-Za-z0-9_-]{43})/accept$`)

// secretOf is the secret of an invitation link.
func secretOf(t *testing.T, link string) string {
	t.Helper()
	m := linkPattern.FindStringSubmatch(link)
	if m == nil {
		t.Fatalf("%q is not an invitation link", link)
	}
	return m[1]
}

// signInHref is what "Sign in to accept" on an invitation page points at.
func signInHref(secret string) string {
	return "/auth/login?next=" + url.QueryEscape("/invitations/"+secret+"/accept") + "&invitation=" + url.QueryEscape(secret)
}

// inviteMail waits for the n-th message to email and returns it.
func (is *inviteSite) inviteMail(t *testing.T, email string, n int) maildev.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got, err := is.mail.WaitTo(ctx, email, n)
	if err != nil {
		t.Fatal(err)
	}
	return got[n-1]
}

var (
	textLink = regexp.MustCompile(`https?://[^\s<>"]+/accept`)
	htmlHref = regexp.MustCompile(`<a [^>]*href="([^"]+)"`)
)

// wantInviteMail checks an invitation email as its reader sees it —
// subject, sender, recipient, the link in the text part and in the HTML
// part's button — and returns the link of the HTML button.
func (is *inviteSite) wantInviteMail(t *testing.T, m maildev.Message, email, link string) string {
	t.Helper()
	if want := "You are invited to " + is.site; m.Subject != want {
		t.Errorf("subject %q, want %q", m.Subject, want)
	}
	if len(m.To) != 1 || !strings.EqualFold(m.To[0].Address, email) {
		t.Errorf("To %+v, want only %s", m.To, email)
	}
	if len(m.Envelope.To) != 1 || !strings.EqualFold(m.Envelope.To[0].Address, email) {
		t.Errorf("SMTP recipients %+v, want only %s", m.Envelope.To, email)
	}
	if len(m.From) != 1 || m.From[0].Address != inviteFrom || m.From[0].Name != inviteFromName {
		t.Errorf("From %+v, want %s <%s>", m.From, inviteFromName, inviteFrom)
	}
	if ct := m.Header("content-type"); !strings.HasPrefix(ct, "multipart/alternative") {
		t.Errorf("Content-Type %q, want multipart/alternative (text and HTML)", ct)
	}
	if got := textLink.FindAllString(m.Text, -1); len(got) != 1 || got[0] != link {
		t.Errorf("the text part links %q, want exactly the invitation link %s:\n%s", got, link, m.Text)
	}
	if !strings.Contains(m.Text, email) || !strings.Contains(m.Text, is.site) {
		t.Errorf("the text part does not name the invited address and the site:\n%s", m.Text)
	}
	hrefs := htmlHref.FindAllStringSubmatch(m.HTML, -1)
	if len(hrefs) != 1 || hrefs[0][1] != link {
		t.Fatalf("the HTML part links %q, want one button to %s:\n%s", hrefs, link, m.HTML)
	}
	if !strings.Contains(m.HTML, "Accept the invitation") {
		t.Errorf("the HTML part has no \"Accept the invitation\" button:\n%s", m.HTML)
	}
	return hrefs[0][1]
}

// ---- the store ----

// auditCount counts the audit rows about target ("" for all) with action
// ("" for any), as the running server's admin API lists them.
func (is *inviteSite) auditCount(t *testing.T, action, target string) int {
	t.Helper()
	q := url.Values{"limit": {"1000"}}
	if target != "" {
		q.Set("target", target)
	}
	status, body := is.admin(t, "GET", "/cognito/audit?"+q.Encode(), nil)
	var events []struct{ Action string }
	if status != http.StatusOK || json.Unmarshal(body, &events) != nil {
		t.Fatalf("GET /cognito/audit: HTTP %d %s", status, body)
	}
	if len(events) == 1000 {
		t.Fatal("the audit log has more rows than one page shows")
	}
	n := 0
	for _, e := range events {
		if action == "" || e.Action == action {
			n++
		}
	}
	return n
}

// ---- pages ----

// wantInvitedPage: the page of a valid link before sign-in.
func (is *inviteSite) wantInvitedPage(t *testing.T, r browserReport, email string) {
	t.Helper()
	if r.Status != http.StatusOK || !strings.HasPrefix(r.Title, "You are invited to "+is.site) ||
		!strings.Contains(r.Text, "You are invited to "+is.site) ||
		!strings.Contains(r.Text, "This invitation is for "+email+". Sign in to accept it.") ||
		!strings.Contains(r.Text, "Sign in to accept") {
		t.Errorf("want the invitation page for %s:\n%s", email, r)
	}
	if len(r.Forms) != 0 {
		t.Errorf("before sign-in the invitation page has a form: %+v", r.Forms)
	}
}

// wantInvalidPage: the one page every dead link shows before sign-in.
func wantInvalidPage(t *testing.T, r browserReport) {
	t.Helper()
	if r.Status != http.StatusNotFound || !strings.Contains(r.Text, inviteInvalid) ||
		strings.Contains(r.Text, "Sign in to accept") || len(r.Forms) != 0 {
		t.Errorf("want the 404 page %q without a way to sign in:\n%s", inviteInvalid, r)
	}
}

// wantRefusedAtCallback: the sign-in came back, and the callback refused
// the first-time identity with message; no session.
func wantRefusedAtCallback(t *testing.T, base string, r browserReport, message string) {
	t.Helper()
	if !strings.HasPrefix(r.URL, base+"/auth/callback?") || r.Status != http.StatusForbidden || !strings.Contains(r.Text, message) {
		t.Errorf("want the 403 page %q at the callback:\n%s", message, r)
	}
	if c, ok := r.cookie(loginSessionName); ok && c.Value != "" {
		t.Errorf("a refused identity got a session cookie: %+v", c)
	}
}
