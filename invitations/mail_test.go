package invitations

import (
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"strings"
	"testing"
	"time"
)

func TestMailerConfig(t *testing.T) {
	for _, bad := range []MailConfig{
		{From: "a@example.com"},
		{Host: "smtp.example.com", From: "not an address"},
		{Host: "smtp.example.com", From: "a@example.com", TLS: "none"},
		{Host: "relay.localhost", From: "a@example.com", TLS: "none"}, // may resolve through DNS
		{Host: "localhost.", From: "a@example.com", TLS: "none"},
		{Host: "smtp.example.com", From: "a@example.com", TLS: "ssl3"},
		{Host: "smtp.example.com", From: "a@example.com", Subject: "{{.Nope"},
	} {
		if _, err := NewMailer(bad); err == nil {
			t.Errorf("NewMailer(%+v) accepted", bad)
		}
	}
	m, err := NewMailer(MailConfig{Host: "127.0.0.1", TLS: "none", From: "Site <no-reply@example.com>"})
	if err != nil || m.cfg.Port != 25 {
		t.Fatalf("loopback relay: %v, port %d", err, m.cfg.Port)
	}
	for _, host := range []string{"localhost", "LOCALHOST", "::1"} {
		if _, err := NewMailer(MailConfig{Host: host, TLS: "none", From: "a@example.com"}); err != nil {
			t.Errorf("tls none to %s: %v", host, err)
		}
	}
	if m, _ := NewMailer(MailConfig{Host: "smtp.example.com", From: "a@example.com"}); m.cfg.TLS != "starttls" || m.cfg.Port != 587 {
		t.Errorf("defaults: %s %d", m.cfg.TLS, m.cfg.Port)
	}
}

// TestCompose: both alternatives carry the link; values are escaped in
// HTML; a template cannot make a header span lines.
func TestCompose(t *testing.T) {
	m, err := NewMailer(MailConfig{Host: "127.0.0.1", TLS: "none", From: "Site <no-reply@example.com>",
		Subject: "Join {{.Site}}\r\nBcc: victim@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := m.Compose(Message{To: "ann@example.com", Site: `<b>Acme</b> & co`, AcceptURL: "https://app.example.com/invitations/SECRET/accept",
		ExpiresAt: time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := mail.ReadMessage(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	if msg.Header.Get("Bcc") != "" {
		t.Error("the subject template injected a header")
	}
	subj, _ := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if subj != "Join <b>Acme</b> & co Bcc: victim@example.com" || msg.Header.Get("To") != "<ann@example.com>" {
		t.Errorf("subject %q, to %q", subj, msg.Header.Get("To"))
	}
	_, params, _ := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	mr := multipart.NewReader(msg.Body, params["boundary"])
	parts := map[string]string{}
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p) // multipart decodes quoted-printable
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		parts[ct] = string(b)
	}
	if !strings.Contains(parts["text/plain"], "https://app.example.com/invitations/SECRET/accept") ||
		!strings.Contains(parts["text/plain"], "5 December 2026") {
		t.Errorf("text part:\n%s", parts["text/plain"])
	}
	if !strings.Contains(parts["text/html"], `href="https://app.example.com/invitations/SECRET/accept"`) ||
		strings.Contains(parts["text/html"], "<b>Acme</b>") || !strings.Contains(parts["text/html"], "&lt;b&gt;Acme&lt;/b&gt; &amp; co") {
		t.Errorf("html part:\n%s", parts["text/html"])
	}
}
