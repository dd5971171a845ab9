package caddycognito

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("cognito_login", parseLogin)
	// Sign-in runs where authentication does, like cognito_bearer: after
	// request rewriting, before anything that answers the request. (The
	// anchor must be a standard directive; both sit just before basic_auth.)
	httpcaddyfile.RegisterDirectiveOrder("cognito_login", httpcaddyfile.Before, "basic_auth")
}

// parseLogin sets up the `cognito_login` handler. Syntax:
//
//	cognito_login [<matcher>] {
//		pool <name> [<name>…]                # several: a chooser at {prefix}login, or {prefix}login?pool=<name>
//		path_prefix <path>                   # default /auth/
//		redirect_uri <url>
//		scopes <scope>…
//		secret <key> [<previous key>…]
//		idle_timeout <duration>              # default 8h
//		session_lifetime <duration>          # default 168h
//		unauthenticated auto|redirect|status
//		require scope|group|role <value>…
//		require claim <name> <value>…
//		allow_preflight                      # CORS preflights without a session go to the next handler
//		admit sso_migration
//		admit trusted_provider <name>…|* [create]
//		admit email_domain <domain>…
//		admit any
//		admit invited
//		refused_message <text>
//		return_origins <origin>…
//		default_return <path>
//		page forbidden|refused|error|signed_out|logout|choose <template file>
//		header_prefix <prefix>
//		identity_headers <name>…|none     # which X-Auth-* go upstream (default: all)
//		forward_token access|id [header <name>]   # off by default; header default Authorization (Bearer)
//		assertion                            # also send X-Auth-Assertion (signed)
//	}
func parseLogin(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	l := new(Login)
	return l, l.UnmarshalCaddyfile(h.Dispenser)
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens; see parseLogin.
func (l *Login) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		opt := d.Val()
		switch opt {
		case "require":
			r, err := parseRequirement(d)
			if err != nil {
				return err
			}
			l.Require = append(l.Require, r)
		case "allow_preflight":
			if d.NextArg() {
				return d.ArgErr()
			}
			l.AllowPreflight = true
		case "forward_token":
			// forward_token access|id [header <name>]
			args := d.RemainingArgs()
			if l.ForwardToken != nil {
				return d.Err("forward_token is set twice")
			}
			switch {
			case len(args) == 1:
			case len(args) == 3 && args[1] == "header":
			default:
				return d.Err("forward_token takes access or id, and optionally header <name>")
			}
			if args[0] != "access" && args[0] != "id" {
				return d.Errf("forward_token must be access or id, not %q", args[0])
			}
			l.ForwardToken = &ForwardToken{Token: args[0]}
			if len(args) == 3 {
				l.ForwardToken.Header = args[2]
			}
		case "admit":
			r, err := parseAdmitRule(d)
			if err != nil {
				return err
			}
			l.Admit = append(l.Admit, r)
		case "scopes", "return_origins":
			vals := d.RemainingArgs()
			if len(vals) == 0 {
				return d.ArgErr()
			}
			if opt == "scopes" {
				l.Scopes = append(l.Scopes, vals...)
			} else {
				l.ReturnOrigins = append(l.ReturnOrigins, vals...)
			}
		case "secret":
			vals := d.RemainingArgs()
			if len(vals) == 0 || l.Secret != "" {
				return d.ArgErr()
			}
			l.Secret, l.PreviousSecrets = vals[0], vals[1:]
		case "idle_timeout", "session_lifetime":
			v, err := singleArg(d)
			if err != nil {
				return err
			}
			dur, err := caddy.ParseDuration(v)
			if err != nil {
				return d.Errf("%s: %v", opt, err)
			}
			if opt == "idle_timeout" {
				l.IdleTimeout = caddy.Duration(dur)
			} else {
				l.SessionLifetime = caddy.Duration(dur)
			}
		case "unauthenticated":
			v, err := singleArg(d)
			if err != nil {
				return err
			}
			if v != "auto" && v != "redirect" && v != "status" {
				return d.Errf("unauthenticated must be auto, redirect or status, not %q", v)
			}
			l.Unauthenticated = v
		case "assertion":
			if d.NextArg() {
				return d.ArgErr()
			}
			l.Assertion = true
		case "page":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return d.ArgErr()
			}
			if l.Pages == nil {
				l.Pages = map[string]string{}
			}
			l.Pages[args[0]] = args[1]
		case "identity_headers":
			var err error
			if l.IdentityHeaders, err = identityHeaderArgs(d); err != nil {
				return err
			}
		case "pool":
			if err := parsePoolOption(d, &l.Pool, &l.Pools); err != nil {
				return err
			}
		case "path_prefix", "redirect_uri", "refused_message", "default_return", "header_prefix":
			v, err := singleArg(d)
			if err != nil {
				return err
			}
			*map[string]*string{
				"path_prefix":     &l.PathPrefix,
				"redirect_uri":    &l.RedirectURI,
				"refused_message": &l.RefusedMessage,
				"default_return":  &l.DefaultReturn,
				"header_prefix":   &l.HeaderPrefix,
			}[opt] = v
		default:
			return d.Errf("unrecognized cognito_login option: %s", opt)
		}
	}
	return nil
}

// parseAdmitRule reads `admit <rule> [<args>…]`.
func parseAdmitRule(d *caddyfile.Dispenser) (AdmitRule, error) {
	args := d.RemainingArgs()
	if len(args) == 0 {
		return AdmitRule{}, d.ArgErr()
	}
	r := AdmitRule{Rule: args[0]}
	args = args[1:]
	switch r.Rule {
	case "sso_migration", "any", "invited":
		if len(args) > 0 {
			return r, d.Errf("admit %s takes no arguments", r.Rule)
		}
	case "trusted_provider":
		if n := len(args); n > 0 && args[n-1] == "create" {
			r.Create, args = true, args[:n-1]
		}
		if len(args) == 0 {
			return r, d.Errf("admit trusted_provider needs provider names, or *")
		}
		r.Providers = args
	case "email_domain":
		if len(args) == 0 {
			return r, d.Errf("admit email_domain needs at least one domain")
		}
		r.Domains = args
	default:
		return r, d.Errf("unknown admit rule %q (use sso_migration, trusted_provider, email_domain, any or invited)", r.Rule)
	}
	return r, nil
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Login)(nil)
