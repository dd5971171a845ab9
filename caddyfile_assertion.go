package caddycognito

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("cognito_assertion_keys", parseAssertionKeys)
	// The public keys must be reachable without signing in: the directive
	// runs before the sign-in handlers (which sit just before basic_auth,
	// after try_files).
	httpcaddyfile.RegisterDirectiveOrder("cognito_assertion_keys", httpcaddyfile.After, "try_files")
}

// parseAssertion reads the global option's `assertion` block. Syntax:
//
//	assertion {
//		key <current.pem> [<previous.pem>…]  # default: generated in the data dir
//		issuer <url>                         # default: the site's origin
//		lifetime <duration>                  # default 60s, at most 5m
//	}
func parseAssertion(d *caddyfile.Dispenser) (*AssertionConfig, error) {
	a := new(AssertionConfig)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch opt := d.Val(); opt {
		case "key":
			if a.KeyFiles != nil {
				return nil, d.Err("key is set twice; list the previous keys after the current one on one line")
			}
			if a.KeyFiles = d.RemainingArgs(); len(a.KeyFiles) == 0 {
				return nil, d.ArgErr()
			}
		case "issuer":
			v, err := singleArg(d)
			if err != nil {
				return nil, err
			}
			a.Issuer = v
		case "lifetime":
			v, err := singleArg(d)
			if err != nil {
				return nil, err
			}
			dur, err := caddy.ParseDuration(v)
			if err != nil {
				return nil, d.Errf("lifetime: %v", err)
			}
			a.Lifetime = caddy.Duration(dur)
		default:
			return nil, d.Errf("unrecognized assertion option: %s", opt)
		}
	}
	return a, nil
}

// parseAssertionKeys sets up the `cognito_assertion_keys` handler. Syntax:
//
//	cognito_assertion_keys [<matcher>]
func parseAssertionKeys(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	k := new(AssertionKeys)
	return k, k.UnmarshalCaddyfile(h.Dispenser)
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens; see parseAssertionKeys.
func (k *AssertionKeys) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() || d.NextBlock(0) {
		return d.Err("cognito_assertion_keys takes no arguments or options (only a matcher)")
	}
	return nil
}

// Interface guard
var _ caddyfile.Unmarshaler = (*AssertionKeys)(nil)
