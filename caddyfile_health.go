package caddycognito

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("cognito_health", parseHealth)
	// A load balancer's probe must not have to sign in: the health answer
	// comes before cognito_bearer and cognito_login (which sit just before
	// basic_auth), after the rewrites.
	httpcaddyfile.RegisterDirectiveOrder("cognito_health", httpcaddyfile.After, "try_files")
}

// parseHealth sets up the `cognito_health` handler. Syntax:
//
//	cognito_health [<matcher>]
func parseHealth(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	hh := new(HealthHandler)
	return hh, hh.UnmarshalCaddyfile(h.Dispenser)
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens: it takes
// no options.
func (h *HealthHandler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	if d.NextArg() {
		return d.ArgErr()
	}
	if d.NextBlock(0) {
		return d.Err("cognito_health takes no options")
	}
	return nil
}

var _ caddyfile.Unmarshaler = (*HealthHandler)(nil)
