package caddycognito

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-cognito/caddy-cognito/internal/identity"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("cognito", parseGlobalOption)
	httpcaddyfile.RegisterHandlerDirective("cognito_bearer", parseBearer)
	// Authentication runs where Caddy's own basic_auth does: after request
	// rewriting, before anything that answers the request.
	httpcaddyfile.RegisterDirectiveOrder("cognito_bearer", httpcaddyfile.Before, "basic_auth")
}

// parseGlobalOption sets up the `cognito` app. Syntax:
//
//	cognito {
//		store sqlite [<path>]               # default {data dir}/cognito/cognito.db
//		store postgres <dsn>                # one database several instances share
//		secret <key> [<previous key>…]      # seals refresh tokens; required with postgres
//		pool <name> {
//			issuer <url>                   # or: region <r> + user_pool_id <id>
//			region <aws region>
//			user_pool_id <pool id>
//			issuer_type original|updated   # the form this pool issues; both are accepted
//			label <text>                   # its name on the sign-in chooser
//			client_id <id> [<id>…]         # repeatable
//			client_secret <secret>
//			domain <hosted ui domain>
//			jwks_url <url>
//			leeway <duration>
//		}
//		roles {                           # provider roles, see App.Roles
//			group <group> <role>…
//			claim <name> <value> <role>…
//		}
//		invitations {                     # see parseInvitations
//			base_url <url>
//			…
//		}
//		assertion {                       # see parseAssertion
//			key <current.pem> [<previous.pem>…]
//			issuer <url>
//			lifetime <duration>
//		}
//	}
func parseGlobalOption(d *caddyfile.Dispenser, existing any) (any, error) {
	if existing != nil {
		return nil, d.Err("the cognito global option may appear only once")
	}
	app := &App{Pools: map[string]*Pool{}}
	d.Next() // "cognito"
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "pool":
			if !d.NextArg() {
				return nil, d.ArgErr()
			}
			name := d.Val()
			if d.NextArg() {
				return nil, d.ArgErr()
			}
			if _, dup := app.Pools[name]; dup {
				return nil, d.Errf("pool %q is defined twice", name)
			}
			p, err := parsePool(d)
			if err != nil {
				return nil, err
			}
			app.Pools[name] = p
		case "store":
			// store sqlite [<path>] | store postgres <dsn>
			if app.Store != nil {
				return nil, d.Err("store is set twice")
			}
			args := d.RemainingArgs()
			if len(args) < 1 || len(args) > 2 {
				return nil, d.ArgErr()
			}
			switch args[0] {
			case "sqlite":
				app.Store = &StoreConfig{Driver: args[0]}
				if len(args) == 2 {
					app.Store.Path = args[1]
				}
			case "postgres":
				if len(args) != 2 {
					return nil, d.Err("store postgres needs a dsn, e.g. store postgres {env.COGNITO_DATABASE_URL}")
				}
				app.Store = &StoreConfig{Driver: args[0], DSN: args[1]}
			default:
				return nil, d.Errf("unknown store %q (supported: sqlite, postgres)", args[0])
			}
		case "secret":
			if app.Secret != "" {
				return nil, d.Err("secret is set twice")
			}
			args := d.RemainingArgs()
			if len(args) == 0 {
				return nil, d.ArgErr()
			}
			app.Secret, app.PreviousSecrets = args[0], args[1:]
		case "roles":
			if app.Roles != nil {
				return nil, d.Err("roles is set twice")
			}
			if d.NextArg() {
				return nil, d.ArgErr()
			}
			rules, err := parseRoleRules(d)
			if err != nil {
				return nil, err
			}
			app.Roles = rules
		case "invitations":
			if app.Invitations != nil {
				return nil, d.Err("invitations is set twice")
			}
			if d.NextArg() {
				return nil, d.ArgErr()
			}
			inv, err := parseInvitations(d)
			if err != nil {
				return nil, err
			}
			app.Invitations = inv
		case "assertion":
			if app.Assertion != nil {
				return nil, d.Err("assertion is set twice")
			}
			if d.NextArg() {
				return nil, d.ArgErr()
			}
			a, err := parseAssertion(d)
			if err != nil {
				return nil, err
			}
			app.Assertion = a
		default:
			return nil, d.Errf("unrecognized cognito option: %s", d.Val())
		}
	}
	return httpcaddyfile.App{Name: "cognito", Value: caddyconfig.JSON(app, nil)}, nil
}

// parseRoleRules reads the lines of a `roles { … }` block.
func parseRoleRules(d *caddyfile.Dispenser) ([]RoleRule, error) {
	rules := []RoleRule{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		kind, args := d.Val(), d.RemainingArgs()
		switch {
		case kind == "group" && len(args) >= 2:
			rules = append(rules, RoleRule{Group: args[0], Roles: args[1:]})
		case kind == "claim" && len(args) >= 3:
			rules = append(rules, RoleRule{Claim: args[0], Value: args[1], Roles: args[2:]})
		case kind == "group":
			return nil, d.Err("roles: group needs a group name and at least one role")
		case kind == "claim":
			return nil, d.Err("roles: claim needs a claim name, a value and at least one role")
		default:
			return nil, d.Errf("roles: unknown rule %q (use group or claim)", kind)
		}
	}
	if len(rules) == 0 {
		return nil, d.Err("roles: the block is empty")
	}
	return rules, nil
}

func parsePool(d *caddyfile.Dispenser) (*Pool, error) {
	p := new(Pool)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		switch opt {
		case "client_id":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return nil, d.ArgErr()
			}
			p.ClientIDs = append(p.ClientIDs, args...)
		case "leeway":
			v, err := singleArg(d)
			if err != nil {
				return nil, err
			}
			dur, err := caddy.ParseDuration(v)
			if err != nil {
				return nil, d.Errf("leeway: %v", err)
			}
			p.Leeway = caddy.Duration(dur)
		case "issuer", "region", "user_pool_id", "issuer_type", "label", "client_secret", "domain", "jwks_url":
			v, err := singleArg(d)
			if err != nil {
				return nil, err
			}
			*map[string]*string{
				"issuer":        &p.Issuer,
				"region":        &p.Region,
				"user_pool_id":  &p.UserPoolID,
				"issuer_type":   &p.IssuerType,
				"label":         &p.Label,
				"client_secret": &p.ClientSecret,
				"domain":        &p.Domain,
				"jwks_url":      &p.JWKSURL,
			}[opt] = v
		default:
			return nil, d.Errf("unrecognized pool option: %s", opt)
		}
	}
	return p, nil
}

// parsePoolOption reads a handler's `pool <name> [<name>…]`: one name is
// its `pool`, several its `pools`. A second `pool` line is an error.
func parsePoolOption(d *caddyfile.Dispenser, pool *string, pools *[]string) error {
	if *pool != "" || len(*pools) > 0 {
		return d.Err("pool is set twice")
	}
	names := d.RemainingArgs()
	switch len(names) {
	case 0:
		return d.ArgErr()
	case 1:
		*pool = names[0]
	default:
		*pools = names
	}
	return nil
}

// singleArg reads exactly one argument of the current option.
func singleArg(d *caddyfile.Dispenser) (string, error) {
	if !d.NextArg() {
		return "", d.ArgErr()
	}
	v := d.Val()
	if d.NextArg() {
		return "", d.ArgErr()
	}
	return v, nil
}

// parseBearer sets up the `cognito_bearer` handler. Syntax:
//
//	cognito_bearer [<matcher>] {
//		pool <name> [<name>…]             # several: a token of any of them, chosen by its iss
//		token_use access|id
//		cookie <name>
//		require scope <scope> [<scope>…]   # any of them; repeat the line for "and"
//		require group <group> [<group>…]
//		require role <role> [<role>…]      # needs users mapped
//		require claim <name> <value>…      # a string claim equal to, or a list claim holding, one of them
//		users any|mapped
//		allow_preflight                    # CORS preflights without a token go to the next handler
//		unmapped_message <text>
//		realm <name>
//		header_prefix <prefix>
//		identity_headers <name>…|none     # which X-Auth-* go upstream (default: all)
//		assertion                          # also send X-Auth-Assertion (signed)
//	}
func parseBearer(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	b := new(Bearer)
	return b, b.UnmarshalCaddyfile(h.Dispenser)
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens; see parseBearer.
func (b *Bearer) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	var err error
	for d.NextBlock(0) {
		opt := d.Val()
		switch opt {
		case "require":
			r, err := parseRequirement(d)
			if err != nil {
				return err
			}
			b.Require = append(b.Require, r)
		case "token_use":
			v, err := singleArg(d)
			if err != nil {
				return err
			}
			if v != "access" && v != "id" {
				return d.Errf("token_use must be access or id, not %q", v)
			}
			b.TokenUse = v
		case "allow_preflight":
			if d.NextArg() {
				return d.ArgErr()
			}
			b.AllowPreflight = true
		case "assertion":
			if d.NextArg() {
				return d.ArgErr()
			}
			b.Assertion = true
		case "users":
			v, err := singleArg(d)
			if err != nil {
				return err
			}
			if v != "any" && v != "mapped" {
				return d.Errf("users must be any or mapped, not %q", v)
			}
			b.Users = v
		case "identity_headers":
			if b.IdentityHeaders, err = identityHeaderArgs(d); err != nil {
				return err
			}
		case "pool":
			if err = parsePoolOption(d, &b.Pool, &b.Pools); err != nil {
				return err
			}
		case "cookie", "realm", "header_prefix", "unmapped_message":
			v, err := singleArg(d)
			if err != nil {
				return err
			}
			*map[string]*string{
				"cookie":           &b.Cookie,
				"realm":            &b.Realm,
				"header_prefix":    &b.HeaderPrefix,
				"unmapped_message": &b.UnmappedMessage,
			}[opt] = v
		default:
			return d.Errf("unrecognized cognito_bearer option: %s", opt)
		}
	}
	return nil
}

// identityHeaderArgs reads `identity_headers <name>…` or `identity_headers
// none`, checked as Provision checks them.
func identityHeaderArgs(d *caddyfile.Dispenser) ([]string, error) {
	names := d.RemainingArgs()
	if len(names) == 0 {
		return nil, d.ArgErr()
	}
	if _, err := identity.NewHeaders(DefaultHeaderPrefix).Only(names); err != nil {
		return nil, d.Err(err.Error())
	}
	return names, nil
}

// parseRequirement reads `require scope|group|role <value>…` or
// `require claim <name> <value>…`.
func parseRequirement(d *caddyfile.Dispenser) (Requirement, error) {
	var r Requirement
	if !d.NextArg() {
		return r, d.ArgErr()
	}
	kind := d.Val()
	vals := d.RemainingArgs()
	if len(vals) == 0 {
		return r, d.Errf("require %s needs at least one value", kind)
	}
	switch kind {
	case "scope":
		r.Scopes = vals
	case "group":
		r.Groups = vals
	case "role":
		r.Roles = vals
	case "claim":
		if len(vals) < 2 {
			return r, d.Errf("require claim needs a claim name and at least one value")
		}
		r.Claim = &ClaimRequirement{Name: vals[0], Values: vals[1:]}
	default:
		return r, d.Errf("require takes scope, group, role or claim, not %q", kind)
	}
	return r, nil
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Bearer)(nil)
