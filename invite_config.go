package caddycognito

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-cognito/caddy-cognito/internal/urlpolicy"
	"github.com/caddy-cognito/caddy-cognito/invitations"
	"github.com/caddy-cognito/caddy-cognito/userstore"
)

// InvitationsConfig sets up invitations: links that let a person sign in
// the first time as a given local user with given roles. The CLI and the
// admin API create them; the `cognito_invitations` handler serves the
// links; `admit invited` in `cognito_login` admits their first sign-in.
type InvitationsConfig struct {
	// BaseURL is the site invitations are for, e.g.
	// `https://app.example.com`: links are
	// `{base_url}{path_prefix}{secret}/accept`. Required.
	BaseURL string `json:"base_url,omitempty"`

	// PathPrefix is where `cognito_invitations` serves the links.
	// Default: `/invitations/`.
	PathPrefix string `json:"path_prefix,omitempty"`

	// SiteName names the site on invitation pages and emails. Default:
	// the host of BaseURL.
	SiteName string `json:"site_name,omitempty"`

	// Expires is how long a new invitation stays valid. Default: 336h
	// (14 days); at most 8760h.
	Expires caddy.Duration `json:"expires,omitempty"`

	// BindEmail: only an identity whose verified email is the
	// invitation's (case-insensitive) may accept it.
	BindEmail bool `json:"bind_email,omitempty"`

	// Messages replaces texts of the invitation pages, by key: `invalid`
	// (shown before sign-in for unknown, expired, used and revoked links
	// alike), `expired`, `used`, `revoked`, `failed`, `email_mismatch`,
	// `linked_elsewhere`, `conflict`, `accepted`.
	Messages map[string]string `json:"messages,omitempty"`

	// Mail sends invitation emails. Without it, invitations are only
	// shown (the CLI and admin API print the link).
	Mail *MailConfig `json:"mail,omitempty"`
}

// MailConfig is the SMTP server invitation emails go through, and what
// they say.
type MailConfig struct {
	// Host and Port of the SMTP server. Port defaults to 587 (starttls),
	// 465 (tls) or 25 (none).
	Host string `json:"host,omitempty"`
	Port int    `json:"port,omitempty"`
	// TLS is `starttls` (default; refused if the server does not offer
	// it), `tls` (implicit TLS) or `none` (loopback hosts only).
	TLS string `json:"tls,omitempty"`
	// Username and Password authenticate (PLAIN, only over TLS or to
	// localhost). Use `{env.*}` or `{file.*}` for the password.
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	// From is the sender, e.g. `Example <no-reply@example.com>`. Required.
	From string `json:"from,omitempty"`
	// SubjectTemplate, TextTemplate and HTMLTemplate are files holding
	// your own Go templates (text/template for subject and text,
	// html/template for HTML). They get .To, .Site, .AcceptURL,
	// .ExpiresAt, .Roles and .InvitedBy. Default: built-in ones.
	SubjectTemplate string `json:"subject_template,omitempty"`
	TextTemplate    string `json:"text_template,omitempty"`
	HTMLTemplate    string `json:"html_template,omitempty"`
}

// inviteSetup is InvitationsConfig made ready: the mailer built, defaults
// filled in. The service is made per store, on demand.
type inviteSetup struct {
	cfg      InvitationsConfig
	siteName string
	mailer   *invitations.Mailer // nil: no mail configured
	messages map[string]string
}

const defaultInvitePrefix = "/invitations/"

// inviteMessages are the invitation pages' default texts.
var inviteMessages = map[string]string{
	"invalid":          "This invitation link is not valid. It may have expired or been used already. Ask the person who invited you for a new one.",
	"expired":          "This invitation has expired. Ask the person who invited you for a new one.",
	"used":             "This invitation has already been used.",
	"revoked":          "This invitation was withdrawn.",
	"failed":           "This invitation can no longer be accepted. Ask the person who invited you.",
	"email_mismatch":   "This invitation is for another email address. Sign in with the account of the invited address.",
	"linked_elsewhere": "You are signed in with an account that already belongs to someone else on this site. Sign in with the invited account.",
	"accepted":         "You have accepted the invitation.",
	"conflict":         "This invitation could not be accepted: an account with the same name or email already exists on this site. Ask the person who invited you.",
}

// newInviteSetup checks c and prepares it; expand resolves placeholders.
func newInviteSetup(c InvitationsConfig, expand func(string) string) (*inviteSetup, error) {
	c.BaseURL = strings.TrimRight(expand(c.BaseURL), "/")
	if c.BaseURL == "" {
		return nil, fmt.Errorf("invitations: base_url is required (the site's address, e.g. https://app.example.com)")
	}
	u, err := urlpolicy.ParseBaseURL(c.BaseURL)
	if errors.Is(err, urlpolicy.ErrNotBaseURL) {
		return nil, fmt.Errorf("invitations: base_url %q must be scheme://host[:port] only", c.BaseURL)
	}
	if err != nil {
		return nil, fmt.Errorf("invitations: base_url: %w", err)
	}
	if c.PathPrefix == "" {
		c.PathPrefix = defaultInvitePrefix
	}
	if !strings.HasPrefix(c.PathPrefix, "/") || !strings.HasSuffix(c.PathPrefix, "/") || strings.ContainsAny(c.PathPrefix, "?#\\ ") {
		return nil, fmt.Errorf("invitations: path_prefix %q must start and end with /", c.PathPrefix)
	}
	if c.Expires == 0 {
		c.Expires = caddy.Duration(invitations.DefaultTTL)
	}
	if time.Duration(c.Expires) < time.Minute || time.Duration(c.Expires) > invitations.MaxTTL {
		return nil, fmt.Errorf("invitations: expires must be between 1m and %s", invitations.MaxTTL)
	}
	s := &inviteSetup{cfg: c, siteName: c.SiteName, messages: map[string]string{}}
	if s.siteName == "" {
		s.siteName = u.Host
	}
	for k, v := range inviteMessages {
		s.messages[k] = v
	}
	for k, v := range c.Messages {
		if _, ok := inviteMessages[k]; !ok {
			return nil, fmt.Errorf("invitations: unknown message %q", k)
		}
		s.messages[k] = v
	}
	if c.Mail != nil {
		if s.mailer, err = newMailer(*c.Mail, expand); err != nil {
			return nil, fmt.Errorf("invitations: %w", err)
		}
	}
	return s, nil
}

func newMailer(m MailConfig, expand func(string) string) (*invitations.Mailer, error) {
	mc := invitations.MailConfig{
		Host: expand(m.Host), Port: m.Port, TLS: m.TLS,
		Username: expand(m.Username), Password: expand(m.Password), From: expand(m.From),
	}
	for _, t := range []struct {
		file string
		dst  *string
	}{{m.SubjectTemplate, &mc.Subject}, {m.TextTemplate, &mc.Text}, {m.HTMLTemplate, &mc.HTML}} {
		if t.file == "" {
			continue
		}
		b, err := os.ReadFile(t.file)
		if err != nil {
			return nil, fmt.Errorf("mail template: %w", err)
		}
		*t.dst = string(b)
	}
	return invitations.NewMailer(mc)
}

// acceptURL is the link of an invitation secret.
func (s *inviteSetup) acceptURL(secret string) string {
	return s.cfg.BaseURL + s.cfg.PathPrefix + secret + "/accept"
}

// send emails an invitation's link and records it.
func (s *inviteSetup) Send(ctx context.Context, svc *invitations.Service, inv *invitations.Invitation, secret string) error {
	if s.mailer == nil {
		return fmt.Errorf("no mail server is configured (invitations { mail { … } })")
	}
	err := s.mailer.Send(ctx, invitations.Message{
		To: inv.Email, Site: s.siteName, AcceptURL: s.acceptURL(secret),
		ExpiresAt: inv.ExpiresAt, Roles: inv.Roles, InvitedBy: inv.CreatedBy,
	})
	if err != nil {
		return err
	}
	return svc.MarkSent(ctx, inv.ID, time.Now())
}

// sweepInvitations marks expired invitations, now and every interval,
// until ctx ends. It opens the store only when there is a sweep to do.
func sweepInvitations(ctx context.Context, store func() (*userstore.Store, error), interval time.Duration, logger *zap.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if s, err := store(); err != nil {
			logger.Warn("invitation sweep: store unavailable", zap.Error(err))
		} else if n, err := invitations.New(s, nil).ExpireDue(ctx); err != nil {
			if ctx.Err() == nil {
				logger.Warn("invitation sweep failed", zap.Error(err))
			}
		} else if n > 0 {
			logger.Info("invitations expired", zap.Int("count", n))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
