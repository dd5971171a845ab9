package caddycognito

import (
	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-cognito/caddy-cognito/internal/jose"
)

// keySetPool shares one KeySet per JWKS URL across config reloads and
// handlers: a reload acquires the new config's key sets before the old
// config releases its own, so keys (and their refresh loop) survive reloads.
var keySetPool = caddy.NewUsagePool()

// acquireKeySet returns the shared KeySet for jwksURL, creating it (and
// starting its first fetch and background refresh) if no config holds it
// yet. Each successful call must be paired with releaseKeySet.
//
// It waits a short while for the first fetch so the first requests find
// keys, but an unreachable JWKS never fails it: Caddy starts, and requests
// fail closed (TokenError.Unavailable) until the keys arrive.
func acquireKeySet(ctx caddy.Context, jwksURL string) (*jose.KeySet, error) {
	log := caddy.Log().Named("cognito.jwks")
	v, _, err := keySetPool.LoadOrNew(jwksURL, func() (caddy.Destructor, error) {
		return jose.NewKeySet(jwksURL, jose.KeySetOptions{CheckRedirectURL: checkKeyRedirect, Logger: log}), nil
	})
	if err != nil {
		return nil, err
	}
	k := v.(*jose.KeySet)
	k.WaitFirstFetch(ctx)
	if !k.HasKeys() {
		log.Warn("no signing keys yet; tokens of this issuer are refused until the key set can be fetched", zap.String("jwks_url", jwksURL))
	}
	return k, nil
}

// releaseKeySet gives back one use of the KeySet for jwksURL; the last
// release stops its background refresh.
func releaseKeySet(jwksURL string) {
	if _, err := keySetPool.Delete(jwksURL); err != nil {
		caddy.Log().Named("cognito.jwks").Error("stopping key set", zap.String("jwks_url", jwksURL), zap.Error(err))
	}
}

// checkKeyRedirect holds a redirect of the JWKS URL to the rule the
// configured URL obeys (https, or http on a loopback host): keys must not
// be fetched in the clear because a server said so.
func checkKeyRedirect(target string) error {
	return checkTrustedURL("JWKS redirect", target)
}
