package caddycognito

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-cognito/caddy-cognito/internal/assertion"
	"github.com/caddy-cognito/caddy-cognito/internal/jose"
	"github.com/caddy-cognito/caddy-cognito/internal/provider"
	"github.com/caddy-cognito/caddy-cognito/internal/roles"
	"github.com/caddy-cognito/caddy-cognito/internal/urlpolicy"
	"github.com/caddy-cognito/caddy-cognito/userstore"
)

func init() {
	caddy.RegisterModule(App{})
}

// App is the `cognito` Caddy app: the user pools (and other OpenID Connect
// issuers) that the plugin's handlers trust. Handlers find it through the
// Caddy context and pick a pool by name.
type App struct {
	// Pools maps a name of your choice to a user pool. Handlers select
	// one with their `pool` option; when there is exactly one pool they
	// use it by default.
	Pools map[string]*Pool `json:"pools,omitempty"`

	// Store is the identity store (local users, roles, service accounts).
	// It is opened only when a handler needs it, e.g. `users mapped`.
	Store *StoreConfig `json:"store,omitempty"`

	// Secret is the key that encrypts refresh tokens at rest for every
	// `cognito_login` that sets none of its own (at least 32 characters;
	// `{env.*}` and `{file.*}` work). Required with the `postgres` store:
	// every instance must share it, since a key generated into one
	// machine's data directory cannot decrypt what another sealed.
	// PreviousSecrets still decrypt what older secrets sealed.
	Secret          string   `json:"secret,omitempty"`
	PreviousSecrets []string `json:"previous_secrets,omitempty"`

	// Invitations turns on invitation links (see InvitationsConfig).
	Invitations *InvitationsConfig `json:"invitations,omitempty"`

	// Roles maps Cognito groups and ID-token claims to local roles. They
	// are applied at every sign-in and token refresh of `cognito_login`
	// and on the tokens of `cognito_bearer` with `users mapped`: a role a
	// rule grants is held with source "provider" while the rule holds and
	// taken away when it no longer does; roles granted by hand or by an
	// invitation are never touched. Every change is in the audit log.
	// Claim rules are decided from ID-token claims only (Cognito access
	// tokens carry no custom attributes): an access token leaves a role
	// that only claim rules grant as it is, and decides a role that a
	// group rule grants too by the groups alone (leaving the group takes
	// it away; the next ID token gives it back if a claim rule grants it).
	Roles []RoleRule `json:"roles,omitempty"`

	// Assertion configures the signed identity that handlers with the
	// `assertion` option send upstream (see AssertionConfig).
	Assertion *AssertionConfig `json:"assertion,omitempty"`

	roles    *roles.Mapper
	signerMu *sync.Mutex
	signer   *assertion.Signer // built on first use; see assertionSigner

	invites   *inviteSetup
	stopSweep func() // ends the invitation sweep started by Start

	logger   *zap.Logger
	storeMu  *sync.Mutex
	store    *userstore.Store
	storeCfg StoreConfig
}

// Pool is one Cognito user pool (or OpenID Connect issuer) and the app
// clients whose tokens it accepts.
type Pool struct {
	// Issuer is the exact `iss` of the pool's tokens, e.g.
	// `https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf`.
	// Set either this, or Region and UserPoolID. It must be https,
	// except on a loopback host (local stand-ins for tests).
	Issuer string `json:"issuer,omitempty"`

	// Region is the AWS region of the pool, e.g. `eu-west-1`. With
	// UserPoolID it builds the issuer. It may be left out when the pool
	// id starts with the region, as Cognito pool ids do.
	Region string `json:"region,omitempty"`

	// UserPoolID is the Cognito user pool id, e.g. `eu-west-1_AbCdEf`.
	// With Region, tokens of both of Cognito's issuer forms are accepted,
	// each exactly: the original `https://cognito-idp.{region}.amazonaws.com/{id}`
	// and the updated (multi-Region) `https://issuer-cognito-idp.{region}.amazonaws.com/{id}`,
	// whose region is the pool's primary one, for its replicas too.
	UserPoolID string `json:"user_pool_id,omitempty"`

	// IssuerType says which of the two forms the pool issues (Cognito's
	// issuer configuration type): `original` (default) or `updated`. It
	// picks the issuer used for discovery, the default jwks_url, browser
	// sign-in's ID-token check, sessions and the identity links; bearer
	// tokens of either form are accepted. Only with Region/UserPoolID.
	IssuerType string `json:"issuer_type,omitempty"`

	// Label is the pool's name on the sign-in chooser of a
	// `cognito_login` that offers several pools. Default: the pool's name.
	Label string `json:"label,omitempty"`

	// ClientIDs lists the app client ids whose tokens are accepted: an
	// access token's `client_id`, or an ID token's `aud`, must be one of
	// them. At least one is required. Placeholders such as
	// `{env.COGNITO_CLIENT_ID}` are expanded when the config loads.
	ClientIDs []string `json:"client_ids,omitempty"`

	// ClientSecret is the app client's secret, used by browser sign-in.
	// Use `{env.*}` or `{file.*}` rather than writing it in the config.
	ClientSecret string `json:"client_secret,omitempty"`

	// Domain is the pool's hosted-UI domain, e.g.
	// `auth.example.com` or `myapp.auth.eu-west-1.amazoncognito.com`,
	// used by browser sign-in.
	Domain string `json:"domain,omitempty"`

	// JWKSURL overrides where the pool's signing keys are fetched from.
	// Default: `{issuer}/.well-known/jwks.json`. Like the issuer, it
	// must be https except on a loopback host.
	JWKSURL string `json:"jwks_url,omitempty"`

	// Leeway is the clock skew tolerated on `exp`, `nbf` and `iat`.
	// Default: 10s. At most 5m.
	Leeway caddy.Duration `json:"leeway,omitempty"`

	app       *App
	name      string
	issuer    string
	issuers   []string // every exact iss accepted: issuer first, then its other form
	clientIDs []string
	jwksURL   string
	// clientSecret is ClientSecret with placeholders expanded; browser
	// sign-in uses it. It never appears in logs.
	clientSecret string
	keys         *jose.KeySet
	verifiers    map[string]*Verifier // by token_use
}

// RoleRule grants Roles to members of the Cognito group Group, or to an
// identity whose claim Claim is Value (a list claim: holds Value). Set
// Group, or Claim and Value.
type RoleRule struct {
	Group string   `json:"group,omitempty"`
	Claim string   `json:"claim,omitempty"`
	Value string   `json:"value,omitempty"`
	Roles []string `json:"roles,omitempty"`
}

// maxLeeway bounds the configurable clock skew: a larger one would let
// long-expired tokens in.
const maxLeeway = 5 * time.Minute

// tokenUses are the token kinds a pool verifies.
var tokenUses = []string{"access", "id"}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "cognito",
		New: func() caddy.Module { return new(App) },
	}
}

// Provision resolves every pool, acquires its shared key set and builds
// its verifiers.
func (a *App) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	a.storeMu = new(sync.Mutex)
	rules := make([]roles.Rule, len(a.Roles))
	for i, r := range a.Roles {
		rules[i] = roles.Rule(r)
	}
	var err error
	if a.roles, err = roles.New(rules); err != nil {
		return err
	}
	a.signerMu = new(sync.Mutex)
	for _, name := range a.poolNames() {
		p := a.Pools[name]
		if p == nil {
			return fmt.Errorf("pool %q: empty configuration", name)
		}
		p.app = a
		if err := p.provision(ctx, name); err != nil {
			return fmt.Errorf("pool %q: %w", name, err)
		}
		a.logger.Debug("pool ready",
			zap.String("pool", name),
			zap.String("issuer", p.issuer),
			zap.String("jwks_url", p.jwksURL),
			zap.Int("clients", len(p.clientIDs)))
	}
	if err := a.registerMetrics(ctx); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	if a.Invitations != nil {
		repl := caddy.NewReplacer()
		if a.invites, err = newInviteSetup(*a.Invitations, func(s string) string { return repl.ReplaceKnown(s, "") }); err != nil {
			return err
		}
	}
	return nil
}

// Validate checks that there is something to trust.
func (a *App) Validate() error {
	if len(a.Pools) == 0 {
		return fmt.Errorf("cognito: no pools configured; add `pool <name> { issuer … client_id … }` to the global `cognito` option")
	}
	store := a.Store.resolved()
	if err := store.validate(); err != nil {
		return fmt.Errorf("cognito: %w", err)
	}
	if store.Driver == "postgres" && strings.TrimSpace(a.Secret) == "" {
		return fmt.Errorf("cognito: `store postgres` needs a shared `secret` in the global cognito option (JSON: apps.cognito.secret), the same on every instance: a key generated into one machine's data directory cannot decrypt refresh tokens another instance sealed")
	}
	return a.Assertion.validate()
}

// Start implements caddy.App. Most of the app's work happens in its
// handlers; with invitations, it starts the sweep that marks expired ones
// (now, then hourly).
func (a *App) Start() error {
	if a.Assertion != nil {
		// Configured: publish on the admin API even if no handler signs,
		// and report a bad key file now rather than on first use.
		if _, err := a.assertionSigner(); err != nil {
			return err
		}
	}
	if a.invites != nil {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			sweepInvitations(ctx, a.UserStore, invitationSweepEvery, a.logger)
		}()
		a.stopSweep = func() { cancel(); <-done }
	}
	return nil
}

// invitationSweepEvery is how often expired invitations are marked.
const invitationSweepEvery = time.Hour

// Stop implements caddy.App: it ends the invitation sweep.
func (a *App) Stop() error {
	if a.stopSweep != nil {
		a.stopSweep()
		a.stopSweep = nil
	}
	return nil
}

// invitationsSetup returns the invitations configuration, or an error
// saying how to turn invitations on.
func (a *App) invitationsSetup() (*inviteSetup, error) {
	if a.invites == nil {
		return nil, fmt.Errorf("invitations are not configured: add `invitations { base_url … }` to the global cognito option")
	}
	return a.invites, nil
}

// Cleanup gives back the shared key sets and store.
func (a *App) Cleanup() error {
	if a.storeMu != nil {
		a.storeMu.Lock()
		if a.store != nil {
			closeStore(a.storeCfg)
			a.store = nil
		}
		a.storeMu.Unlock()
	}
	for _, p := range a.Pools {
		if p != nil && p.keys != nil {
			releaseKeySet(p.jwksURL)
			p.keys = nil
		}
	}
	return nil
}

// roleSyncer keeps provider roles in step through store for the
// handlers; nil without an app (benchmarks).
func (a *App) roleSyncer(store *userstore.Store) *roles.Syncer {
	if a == nil || a.roles == nil {
		return nil
	}
	return roles.NewSyncer(a.roles, store)
}

// Pool returns the pool called name; an empty name means the only pool.
func (a *App) Pool(name string) (*Pool, error) {
	if name == "" {
		if len(a.Pools) != 1 {
			return nil, fmt.Errorf("%d pools are configured (%s); choose one with `pool <name>`",
				len(a.Pools), strings.Join(a.poolNames(), ", "))
		}
		name = a.poolNames()[0]
	}
	p, ok := a.Pools[name]
	if !ok || p == nil {
		return nil, fmt.Errorf("no pool named %q is configured (have: %s)", name, strings.Join(a.poolNames(), ", "))
	}
	return p, nil
}

// handlerPools returns the pools of a handler's `pool` (one, or the only
// pool when empty) or `pools` (several, each named once).
func (a *App) handlerPools(one string, many []string) ([]*Pool, error) {
	if len(many) == 0 {
		p, err := a.Pool(one)
		if err != nil {
			return nil, err
		}
		return []*Pool{p}, nil
	}
	if one != "" {
		return nil, fmt.Errorf("set pool or pools, not both")
	}
	pools := make([]*Pool, 0, len(many))
	seen := map[string]bool{}
	for _, name := range many {
		if name == "" || seen[name] {
			return nil, fmt.Errorf("pools: %q is empty or listed twice", name)
		}
		seen[name] = true
		p, err := a.Pool(name)
		if err != nil {
			return nil, err
		}
		pools = append(pools, p)
	}
	return pools, nil
}

func (a *App) poolNames() []string {
	names := make([]string, 0, len(a.Pools))
	for n := range a.Pools {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Name is the pool's configured name.
func (p *Pool) Name() string { return p.name }

// loginClientID is the app client browser sign-in uses, and so the one
// its sessions are bound to: the first client_id ("" when there is none).
func (p *Pool) loginClientID() string {
	if len(p.clientIDs) == 0 {
		return ""
	}
	return p.clientIDs[0]
}

// providerPool is what browser sign-in needs of the pool: its login app
// client, and its key set for the ID tokens.
func (p *Pool) providerPool() provider.Pool {
	pp := provider.Pool{Name: p.name, Issuer: p.issuer, Domain: p.Domain, ClientSecret: p.clientSecret, JWKSURL: p.jwksURL,
		ClientID: p.loginClientID()}
	if p.keys != nil {
		pp.Keys = p.keys
	}
	return pp
}

// IssuerURL is the resolved issuer.
func (p *Pool) IssuerURL() string { return p.issuer }

// Keys is the pool's shared key set; go-oidc verifiers use it too.
func (p *Pool) Keys() *jose.KeySet { return p.keys }

// Verifier returns the pool's verifier for tokenUse ("access" or "id").
func (p *Pool) Verifier(tokenUse string) *Verifier { return p.verifiers[tokenUse] }

// poolIDPattern is the shape of a Cognito user pool id: region, underscore, id.
var poolIDPattern = regexp.MustCompile(`^([a-z]{2}(?:-[a-z]+)+-\d+)_[0-9A-Za-z]+$`)

func (p *Pool) provision(ctx caddy.Context, name string) error {
	p.name = name
	repl := caddy.NewReplacer()
	expand := func(s string) string { return strings.TrimSpace(repl.ReplaceKnown(s, "")) }

	issuers, err := p.resolveIssuers(expand)
	if err != nil {
		return err
	}
	p.issuer, p.issuers = issuers[0], issuers
	if p.Label == "" {
		p.Label = name
	}

	p.clientIDs = nil
	for _, c := range p.ClientIDs {
		if c = expand(c); c != "" {
			p.clientIDs = append(p.clientIDs, c)
		}
	}
	if len(p.clientIDs) == 0 {
		return fmt.Errorf("no client_id: list the app client ids whose tokens are accepted (an empty {env.*} counts as none)")
	}

	p.clientSecret = expand(p.ClientSecret)

	p.jwksURL = expand(p.JWKSURL)
	if p.jwksURL == "" {
		p.jwksURL = p.issuer + "/.well-known/jwks.json"
	}
	if err := checkTrustedURL("jwks_url", p.jwksURL); err != nil {
		return err
	}

	leeway := time.Duration(p.Leeway)
	if leeway < 0 || leeway > maxLeeway {
		return fmt.Errorf("leeway %s is out of range (0 to %s)", leeway, maxLeeway)
	}

	p.keys, err = acquireKeySet(ctx, p.jwksURL)
	if err != nil {
		return fmt.Errorf("signing keys: %w", err)
	}
	p.verifiers = make(map[string]*Verifier, len(tokenUses))
	for _, use := range tokenUses {
		p.verifiers[use] = NewVerifier(p.keys, VerifierConfig{
			Pool:      name,
			Issuer:    p.issuer,
			Issuers:   p.issuers[1:],
			ClientIDs: p.clientIDs,
			TokenUse:  use,
			Leeway:    leeway,
		})
	}
	return nil
}

// resolveIssuers returns the exact issuers the pool's tokens may carry,
// the pool's own first: `issuer` alone, or both Cognito forms built from
// `region` + `user_pool_id`.
func (p *Pool) resolveIssuers(expand func(string) string) ([]string, error) {
	issuer, region, poolID, form := expand(p.Issuer), expand(p.Region), expand(p.UserPoolID), expand(p.IssuerType)
	switch {
	case issuer != "" && (region != "" || poolID != ""):
		return nil, fmt.Errorf("set either issuer, or region and user_pool_id, not both")
	case issuer != "":
		if form != "" {
			return nil, fmt.Errorf("issuer_type goes with region and user_pool_id; with issuer, write the exact issuer")
		}
		if err := checkTrustedURL("issuer", issuer); err != nil {
			return nil, err
		}
		if strings.HasSuffix(issuer, "/") && strings.Contains(issuer, ".amazonaws.com") {
			return nil, fmt.Errorf("issuer %q ends with a slash; Cognito issuers do not, and tokens would never match", issuer)
		}
		return []string{issuer}, nil
	case poolID != "":
		m := poolIDPattern.FindStringSubmatch(poolID)
		if m == nil {
			return nil, fmt.Errorf("user_pool_id %q does not look like a Cognito pool id (region_id, e.g. eu-west-1_AbCdEf)", poolID)
		}
		if region == "" {
			region = m[1]
		}
		if region != m[1] {
			return nil, fmt.Errorf("region %q does not match user_pool_id %q", region, poolID)
		}
		return cognitoIssuers(region, poolID, form)
	default:
		return nil, fmt.Errorf("no issuer: set issuer, or region and user_pool_id")
	}
}

// cognitoIssuers are the two issuer forms of a Cognito pool, the one the
// pool issues (form) first. Cognito documents exactly two
// (IssuerConfigurationType in the Cognito user pools API reference,
// https://docs.aws.amazon.com/cognito-user-identity-pools/latest/APIReference/API_IssuerConfigurationType.html):
// ORIGINAL, https://cognito-idp.{region}.amazonaws.com/{userPoolId}, and
// UPDATED, https://issuer-cognito-idp.{region}.amazonaws.com/{userPoolId},
// "where region is the primary Region of your user pool", recommended for
// and required by multi-Region replication
// (https://docs.aws.amazon.com/cognito/latest/developerguide/user-pool-multi-region.html):
// replicas share the pool id and issue tokens under that one multi-Region
// issuer, so a replica has no issuer of its own to accept. The pool id
// starts with the primary region, which is why region must match it.
func cognitoIssuers(region, poolID, form string) ([]string, error) {
	original := "https://cognito-idp." + region + ".amazonaws.com/" + poolID
	updated := "https://issuer-cognito-idp." + region + ".amazonaws.com/" + poolID
	switch strings.ToLower(form) {
	case "", "original":
		return []string{original, updated}, nil
	case "updated":
		return []string{updated, original}, nil
	}
	return nil, fmt.Errorf("issuer_type must be original or updated, not %q", form)
}

// checkTrustedURL refuses URLs that keys or identities must not come from
// (urlpolicy.CheckTrustedURL); the issuer, jwks_url, redirect_uri and JWKS
// redirects all go through it.
func checkTrustedURL(field, raw string) error { return urlpolicy.CheckTrustedURL(field, raw) }

// Interface guards
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.Validator    = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)
