package maildev

import (
	"context"
	"net/smtp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A message sent with Go's SMTP client comes back from GET /email decoded.
func TestMaildevReceives(t *testing.T) {
	s := StartT(t)
	msg := strings.ReplaceAll(`From: Sender <from@example.com>
To: someone@example.org
Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="b1"

--b1
Content-Type: text/plain; charset=utf-8

plain http://127.0.0.1/x
--b1
Content-Type: text/html; charset=utf-8

<a href="http://127.0.0.1/x">x</a>
--b1--
`, "\n", "\r\n")
	if err := smtp.SendMail("127.0.0.1:"+strconv.Itoa(s.SMTPPort), nil, "from@example.com", []string{"someone@example.org"}, []byte(msg)); err != nil {
		t.Fatalf("sending to maildev: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := s.WaitTo(ctx, "Someone@example.org", 1)
	if err != nil {
		t.Fatal(err)
	}
	m := got[0]
	if m.Subject != "Grüße" || len(m.From) != 1 || m.From[0].Name != "Sender" || m.From[0].Address != "from@example.com" {
		t.Errorf("subject %q from %+v", m.Subject, m.From)
	}
	if !strings.Contains(m.Text, "plain http://127.0.0.1/x") || !strings.Contains(m.HTML, `href="http://127.0.0.1/x"`) {
		t.Errorf("text %q html %q", m.Text, m.HTML)
	}
	if m.Envelope.From.Address != "from@example.com" || len(m.Envelope.To) != 1 || m.Envelope.To[0].Address != "someone@example.org" {
		t.Errorf("envelope %+v", m.Envelope)
	}
	if other, err := s.To(ctx, "nobody@example.org"); err != nil || len(other) != 0 {
		t.Errorf("messages for nobody: %v %v", other, err)
	}
}
