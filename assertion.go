package caddycognito

import (
	"crypto/ecdsa"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-cognito/caddy-cognito/internal/assertion"
	"github.com/caddy-cognito/caddy-cognito/internal/seal"
	"github.com/caddy-cognito/caddy-cognito/internal/urlpolicy"
)

func init() {
	caddy.RegisterModule(AssertionKeys{})
}

// AssertionConfig is how `cognito_bearer` and `cognito_login` sign the
// identity they send upstream when their `assertion` option is on: a
// compact ES256 JWT in `X-Auth-Assertion` (under the handler's
// header_prefix) with `iss`, `aud` (the site's host), `sub` (the
// `X-Auth-User` value), `iat`, `exp`, `jti`, and `username`, `email`
// (verified only, with `email_verified`), `groups`, `roles` and `pool`
// when the identity has them. Upstreams verify it against the public keys
// that `cognito_assertion_keys` and the admin API's
// `GET /cognito/assertion/jwks.json` publish. Without this option,
// handlers that ask for assertions use the defaults.
type AssertionConfig struct {
	// KeyFiles are PEM files of ES256 (P-256) private keys (SEC 1 or
	// PKCS #8, e.g. `openssl ecparam -name prime256v1 -genkey -noout`).
	// The first signs; all of them are published for as long as they are
	// listed (they are the operator's explicit choice). To rotate, put the
	// new key first and keep the old one second until no token of it can
	// be alive (one lifetime after the reload), then drop it. Placeholders
	// (`{env.*}`) are expanded. Default: with the global option's
	// `secret`, a key derived from it (HKDF, separate from the sealing
	// key), so that instances sharing a store sign alike, and one derived
	// from each of its previous secrets, published only for one `lifetime`
	// after the config is loaded (no token signed with it before the
	// reload is valid any longer; a secret rotated out after a leak thus
	// stops giving forged assertions that soon, though it still opens
	// older sessions); else a key generated once and kept in Caddy's data
	// directory (`cognito/assertion.key`, mode 0600, the 32-byte seed the
	// key is derived from). A rolling rotation of the secret across
	// instances must finish within `lifetime`, or an upstream that fetches
	// the keys from an updated instance rejects tokens of one not yet
	// updated; use key files for a longer overlap.
	KeyFiles []string `json:"key_files,omitempty"`

	// Issuer is every token's `iss`, an https URL (http only on a
	// loopback host). Default: the site's origin as the browser sees it
	// (`https://app.example.com`; `X-Forwarded-Proto`/`-Host` count only
	// from the server's `trusted_proxies`).
	Issuer string `json:"issuer,omitempty"`

	// Lifetime is how long a token is valid (exp - iat, whole seconds).
	// A token is reused for the same identity and site while more than
	// half of it remains. Default: 60s. 2s to 5m. Change it and the
	// global `secret` in separate reloads: keys of previous secrets are
	// published for the new lifetime, not the old one.
	Lifetime caddy.Duration `json:"lifetime,omitempty"`

	now func() time.Time // the clock (tests); nil means time.Now
}

// defaultAssertionKeyFile is where the generated key's seed lives,
// under Caddy's data directory.
const defaultAssertionKeyFile = "assertion.key"

// validate checks what can be checked without reading keys.
func (c *AssertionConfig) validate() error {
	if c == nil {
		return nil
	}
	if c.Lifetime != 0 {
		if err := assertion.CheckLifetime(time.Duration(c.Lifetime)); err != nil {
			return err
		}
	}
	if c.Issuer != "" && !strings.Contains(c.Issuer, "{") {
		if err := urlpolicy.CheckTrustedURL("assertion issuer", c.Issuer); err != nil {
			return err
		}
	}
	return nil
}

// newSigner loads the keys and builds the signer. secrets are the global
// option's secret and previous secrets (placeholders unexpanded), which
// give the default key when there are no key files.
func (c *AssertionConfig) newSigner(secrets ...string) (*assertion.Signer, error) {
	repl := caddy.NewReplacer()
	expand := func(s string) string { return strings.TrimSpace(repl.ReplaceKnown(s, "")) }
	var keys, retiring []*ecdsa.PrivateKey
	for _, f := range c.KeyFiles {
		k, err := assertion.LoadPEMFile(expand(f))
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 && len(secrets) > 0 && secrets[0] != "" {
		// Instances that share a store share the global secret: the key
		// derived from it is the same on all of them, so every instance
		// signs with, and publishes, the same key. Previous secrets give
		// the previous keys, published only while tokens the previous
		// config signed can still be alive (assertion.Config.Retiring).
		for i, sec := range secrets {
			k, err := assertion.KeyFromSeed([]byte(repl.ReplaceKnown(sec, "")))
			if err != nil {
				return nil, fmt.Errorf("assertion key from the global secret #%d: %w", i+1, err)
			}
			if i == 0 {
				keys = append(keys, k)
			} else {
				retiring = append(retiring, k)
			}
		}
	}
	if len(keys) == 0 {
		seed, err := seal.LoadOrCreateKeyFile(filepath.Join(caddy.AppDataDir(), "cognito", defaultAssertionKeyFile))
		if err != nil {
			return nil, fmt.Errorf("assertion key: %w", err)
		}
		k, err := assertion.KeyFromSeed(seed)
		clear(seed)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	issuer := expand(c.Issuer)
	if issuer != "" {
		if err := urlpolicy.CheckTrustedURL("assertion issuer", issuer); err != nil {
			return nil, err
		}
	}
	return assertion.New(assertion.Config{Keys: keys, Retiring: retiring, Issuer: issuer, Lifetime: time.Duration(c.Lifetime), Now: c.now})
}

// assertionSigner returns the config's signer, building it on first use
// (with the defaults when the global option has no `assertion`), so that
// a config that never signs never reads or creates a key.
func (a *App) assertionSigner() (*assertion.Signer, error) {
	a.signerMu.Lock()
	defer a.signerMu.Unlock()
	if a.signer == nil {
		cfg := a.Assertion
		if cfg == nil {
			cfg = new(AssertionConfig)
		}
		s, err := cfg.newSigner(append([]string{a.Secret}, a.PreviousSecrets...)...)
		if err != nil {
			return nil, err
		}
		a.signer = s
	}
	return a.signer, nil
}

// publishedSigner is the signer if the config signs assertions, else nil.
func (a *App) publishedSigner() *assertion.Signer {
	a.signerMu.Lock()
	defer a.signerMu.Unlock()
	return a.signer
}

// handlerSigner is what a handler's Provision does with its `assertion`
// option: the app's signer when on, nil when off.
func handlerSigner(on bool, app *App) (*assertion.Signer, error) {
	if !on {
		return nil, nil
	}
	return app.assertionSigner()
}

// AssertionKeys is an HTTP handler that answers with the public keys of
// the signed identity assertions (a JWKS: the signing key and any
// previous one, see AssertionConfig.KeyFiles for how long, each with
// `kid` = its RFC 7638 thumbprint), for upstreams
// to verify `X-Auth-Assertion` with. It answers GET and HEAD, and 405
// anything else. Put it before any sign-in handler of the site, e.g.
// `cognito_assertion_keys /.well-known/cognito-assertion-keys.json`; the
// Caddyfile orders it before them.
type AssertionKeys struct {
	signer *assertion.Signer
}

// CaddyModule returns the Caddy module information.
func (AssertionKeys) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.cognito_assertion_keys",
		New: func() caddy.Module { return new(AssertionKeys) },
	}
}

// Provision finds the app's signer (creating the default key if needed).
func (k *AssertionKeys) Provision(ctx caddy.Context) error {
	app, err := appFromContext(ctx)
	if err != nil {
		return err
	}
	k.signer, err = app.assertionSigner()
	return err
}

// ServeHTTP implements caddyhttp.MiddlewareHandler; it never calls next.
func (k *AssertionKeys) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	k.signer.ServeJWKS(w, r)
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*AssertionKeys)(nil)
	_ caddyhttp.MiddlewareHandler = (*AssertionKeys)(nil)
)
