package caddycognito

import (
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("cognito_invitations", parseInvitationsHandler)
	// The invitation pages must be reachable without a session, so the
	// handler runs before cognito_login (both before basic_auth).
	httpcaddyfile.RegisterDirectiveOrder("cognito_invitations", httpcaddyfile.Before, "basic_auth")
}

// parseInvitations reads the `invitations` block of the global option:
//
//	invitations {
//		base_url <url>                 # required: https://app.example.com
//		path_prefix <path>             # default /invitations/
//		site_name <name>               # default: the host of base_url
//		expires <duration>             # default 336h
//		bind_email                     # the verified email must be the invited one
//		message <key> <text>           # invalid, expired, used, revoked, failed, email_mismatch, linked_elsewhere, conflict, accepted
//		mail {
//			host <host>
//			port <port>
//			tls starttls|tls|none
//			username <user>
//			password <password>
//			from <address>
//			subject_template <file>
//			text_template <file>
//			html_template <file>
//		}
//	}
func parseInvitations(d *caddyfile.Dispenser) (*InvitationsConfig, error) {
	c := new(InvitationsConfig)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		switch opt {
		case "bind_email":
			if d.NextArg() {
				return nil, d.ArgErr()
			}
			c.BindEmail = true
		case "expires":
			v, err := singleArg(d)
			if err != nil {
				return nil, err
			}
			dur, err := caddy.ParseDuration(v)
			if err != nil {
				return nil, d.Errf("expires: %v", err)
			}
			c.Expires = caddy.Duration(dur)
		case "message":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return nil, d.ArgErr()
			}
			if c.Messages == nil {
				c.Messages = map[string]string{}
			}
			c.Messages[args[0]] = args[1]
		case "mail":
			if d.NextArg() {
				return nil, d.ArgErr()
			}
			m, err := parseMail(d)
			if err != nil {
				return nil, err
			}
			c.Mail = m
		case "base_url", "path_prefix", "site_name":
			v, err := singleArg(d)
			if err != nil {
				return nil, err
			}
			*map[string]*string{"base_url": &c.BaseURL, "path_prefix": &c.PathPrefix, "site_name": &c.SiteName}[opt] = v
		default:
			return nil, d.Errf("unrecognized invitations option: %s", opt)
		}
	}
	return c, nil
}

func parseMail(d *caddyfile.Dispenser) (*MailConfig, error) {
	m := new(MailConfig)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		v, err := singleArg(d)
		if err != nil {
			return nil, err
		}
		switch opt {
		case "port":
			if m.Port, err = strconv.Atoi(v); err != nil || m.Port <= 0 || m.Port > 65535 {
				return nil, d.Errf("port %q is not a port number", v)
			}
		case "tls":
			if v != "starttls" && v != "tls" && v != "none" {
				return nil, d.Errf("tls must be starttls, tls or none, not %q", v)
			}
			m.TLS = v
		case "host", "username", "password", "from", "subject_template", "text_template", "html_template":
			*map[string]*string{
				"host": &m.Host, "username": &m.Username, "password": &m.Password, "from": &m.From,
				"subject_template": &m.SubjectTemplate, "text_template": &m.TextTemplate, "html_template": &m.HTMLTemplate,
			}[opt] = v
		default:
			return nil, d.Errf("unrecognized mail option: %s", opt)
		}
	}
	return m, nil
}

// parseInvitationsHandler sets up the `cognito_invitations` handler:
//
//	cognito_invitations [<matcher>] {
//		pool <name> [<name>...] # the pools of the site's cognito_login; default the only one
//		login_prefix <path>     # cognito_login's path_prefix; default /auth/
//		default_return <path>   # where to go after accepting; default /
//	}
func parseInvitationsHandler(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	i := new(InvitationsHandler)
	return i, i.UnmarshalCaddyfile(h.Dispenser)
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens.
func (i *InvitationsHandler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		opt := d.Val()
		if opt == "pool" {
			if err := parsePoolOption(d, &i.Pool, &i.Pools); err != nil {
				return err
			}
			continue
		}
		v, err := singleArg(d)
		if err != nil {
			return err
		}
		switch opt {
		case "login_prefix":
			i.LoginPrefix = v
		case "default_return":
			i.DefaultReturn = v
		default:
			return d.Errf("unrecognized cognito_invitations option: %s", opt)
		}
	}
	return nil
}

// Interface guard
var _ caddyfile.Unmarshaler = (*InvitationsHandler)(nil)
