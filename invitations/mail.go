package invitations

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"strconv"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/caddy-cognito/caddy-cognito/internal/urlpolicy"
)

// MailConfig says how invitation emails are sent and what they say.
type MailConfig struct {
	Host string
	Port int // default 587 for starttls, 465 for tls, 25 for none
	// TLS is "starttls" (default: plain connection upgraded with STARTTLS,
	// refused if the server does not offer it), "tls" (implicit TLS) or
	// "none" (no encryption: only to a loopback host, e.g. a local relay).
	TLS      string
	Username string // empty: no authentication
	Password string
	From     string // e.g. "Example <no-reply@example.com>"

	// Subject, Text and HTML are Go templates (text/template for the
	// first two, html/template for HTML); empty means the built-in one.
	Subject, Text, HTML string
}

// Message is what an invitation email tells its reader.
type Message struct {
	To        string
	Site      string // the site's name, e.g. "app.example.com"
	AcceptURL string
	ExpiresAt time.Time
	Roles     []string
	InvitedBy string
}

const (
	defaultSubject = `You are invited to {{.Site}}`
	defaultText    = `Hello,

You have been invited to {{.Site}}.

To accept, open this link and sign in:

{{.AcceptURL}}

The invitation is for {{.To}} and expires on {{.ExpiresAt.Format "2 January 2006 at 15:04 MST"}}.
If you did not expect it, ignore this email.
`
	defaultHTML = `<!doctype html>
<html><body style="font-family: system-ui, sans-serif; color: #1f2328">
<p>Hello,</p>
<p>You have been invited to <strong>{{.Site}}</strong>.</p>
<p><a href="{{.AcceptURL}}" style="display:inline-block;background:#1f6feb;color:#fff;padding:.5em 1em;border-radius:6px;text-decoration:none">Accept the invitation</a></p>
<p>Or open this link: {{.AcceptURL}}</p>
<p style="color:#59636e">The invitation is for {{.To}} and expires on {{.ExpiresAt.Format "2 January 2006 at 15:04 MST"}}. If you did not expect it, ignore this email.</p>
</body></html>
`
)

// Mailer sends invitation emails over SMTP.
type Mailer struct {
	cfg     MailConfig
	from    *mail.Address
	subject *texttemplate.Template
	text    *texttemplate.Template
	html    *htmltemplate.Template
}

// NewMailer checks cfg and parses its templates.
func NewMailer(cfg MailConfig) (*Mailer, error) {
	if cfg.Host == "" {
		return nil, errors.New("mail: host is required")
	}
	switch cfg.TLS {
	case "", "starttls":
		cfg.TLS = "starttls"
		defaultPort(&cfg.Port, 587)
	case "tls":
		defaultPort(&cfg.Port, 465)
	case "none":
		defaultPort(&cfg.Port, 25)
		if !urlpolicy.IsLoopbackHost(cfg.Host) { // the password and the mail would cross the network in the clear
			return nil, fmt.Errorf("mail: tls none is only allowed to a loopback host, not %q", cfg.Host)
		}
	default:
		return nil, fmt.Errorf("mail: tls must be starttls, tls or none, not %q", cfg.TLS)
	}
	from, err := mail.ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("mail: from %q: %w", cfg.From, err)
	}
	m := &Mailer{cfg: cfg, from: from}
	if m.subject, err = texttemplate.New("subject").Option("missingkey=error").Parse(or(cfg.Subject, defaultSubject)); err != nil {
		return nil, fmt.Errorf("mail: subject template: %w", err)
	}
	if m.text, err = texttemplate.New("text").Option("missingkey=error").Parse(or(cfg.Text, defaultText)); err != nil {
		return nil, fmt.Errorf("mail: text template: %w", err)
	}
	if m.html, err = htmltemplate.New("html").Option("missingkey=error").Parse(or(cfg.HTML, defaultHTML)); err != nil {
		return nil, fmt.Errorf("mail: html template: %w", err)
	}
	return m, nil
}

func defaultPort(p *int, d int) {
	if *p == 0 {
		*p = d
	}
}

func or(s, d string) string {
	if strings.TrimSpace(s) == "" {
		return d
	}
	return s
}

// Compose renders msg into a complete RFC 5322 message: plain text and
// HTML alternatives, quoted-printable, the subject MIME-encoded.
func (m *Mailer) Compose(msg Message) ([]byte, error) {
	to, err := mail.ParseAddress(msg.To)
	if err != nil {
		return nil, fmt.Errorf("mail: to %q: %w", msg.To, err)
	}
	var subject, text, html bytes.Buffer
	if err := m.subject.Execute(&subject, msg); err != nil {
		return nil, err
	}
	if err := m.text.Execute(&text, msg); err != nil {
		return nil, err
	}
	if err := m.html.Execute(&html, msg); err != nil {
		return nil, err
	}
	subj := strings.Join(strings.Fields(subject.String()), " ") // one line, whatever the template did
	id := make([]byte, 12)
	rand.Read(id)

	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fmt.Fprintf(&buf, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%s@%s>\r\nMIME-Version: 1.0\r\n",
		m.from.String(), to.String(), mime.QEncoding.Encode("utf-8", subj), time.Now().Format(time.RFC1123Z),
		hex.EncodeToString(id), domainOf(m.from.Address))
	fmt.Fprintf(&buf, "Content-Type: multipart/alternative; boundary=%q\r\n\r\n", mw.Boundary())
	for _, part := range []struct {
		ctype string
		body  []byte
	}{{"text/plain; charset=utf-8", text.Bytes()}, {"text/html; charset=utf-8", html.Bytes()}} {
		w, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type": {part.ctype}, "Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return nil, err
		}
		qp := quotedprintable.NewWriter(w)
		if _, err := qp.Write(part.body); err != nil {
			return nil, err
		}
		if err := qp.Close(); err != nil { // writes what is still buffered
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func domainOf(addr string) string {
	if at := strings.LastIndexByte(addr, '@'); at >= 0 {
		return addr[at+1:]
	}
	return "localhost"
}

// Send composes msg and delivers it to the SMTP server.
func (m *Mailer) Send(ctx context.Context, msg Message) error {
	body, err := m.Compose(msg)
	if err != nil {
		return err
	}
	to, _ := mail.ParseAddress(msg.To)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	addr := net.JoinHostPort(m.cfg.Host, strconv.Itoa(m.cfg.Port))
	dialer := &net.Dialer{}
	var conn net.Conn
	if m.cfg.TLS == "tls" {
		conn, err = (&tls.Dialer{NetDialer: dialer, Config: &tls.Config{ServerName: m.cfg.Host}}).DialContext(ctx, "tcp", addr)
	} else {
		conn, err = dialer.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return fmt.Errorf("mail: connecting to %s: %w", addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		if err := conn.SetDeadline(dl); err != nil {
			_ = conn.Close() // the deadline error is the one to report
			return fmt.Errorf("mail: %s: %w", addr, err)
		}
	}
	c, err := smtp.NewClient(conn, m.cfg.Host)
	if err != nil {
		_ = conn.Close() // the greeting's error is the one to report
		return fmt.Errorf("mail: %s: %w", addr, err)
	}
	// After Quit this only finds the connection closed; after an earlier
	// failure, that failure is the one to report.
	defer func() { _ = c.Close() }()
	if m.cfg.TLS == "starttls" {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return fmt.Errorf("mail: %s does not offer STARTTLS (set tls none only for a loopback relay)", addr)
		}
		if err := c.StartTLS(&tls.Config{ServerName: m.cfg.Host}); err != nil {
			return fmt.Errorf("mail: STARTTLS with %s: %w", addr, err)
		}
	}
	if m.cfg.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", m.cfg.Username, m.cfg.Password, m.cfg.Host)); err != nil {
			return fmt.Errorf("mail: authenticating to %s: %w", addr, err)
		}
	}
	if err := c.Mail(m.from.Address); err != nil {
		return fmt.Errorf("mail: MAIL FROM: %w", err)
	}
	if err := c.Rcpt(to.Address); err != nil {
		return fmt.Errorf("mail: RCPT TO: %w", err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("mail: DATA: %w", err)
	}
	if _, err := w.Write(body); err != nil {
		return fmt.Errorf("mail: DATA: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("mail: DATA: %w", err)
	}
	return c.Quit()
}
