package caddycognito

import (
	"context"
	"fmt"

	"github.com/caddy-cognito/caddy-cognito/internal/jose"
)

// issuerVerifiers verifies the tokens of several pools (one token_use) for
// a handler that lists them: the token's `iss`, read from the unverified
// payload, picks the pool's Verifier before any signature work, so a token
// of an issuer not listed is refused without touching any key set (no JWKS
// fetch an attacker could cause by inventing issuers).
//
// It keeps its own token cache, shared by its pools and keyed by the token
// as the Verifier's is: a repeated token of any pool is a hash and a map
// hit, as on a one-pool handler, without even reading its iss.
type issuerVerifiers struct {
	byIssuer map[string]*Verifier // every exact iss of every pool
	cache    *tokenCache
	maxLen   int
	clock    *Verifier // the first pool's verifier, whose clock the cache uses (tests fix it)
}

// newIssuerVerifiers builds the verifier of tokenUse over pools; two pools
// that share an issuer are a configuration error.
func newIssuerVerifiers(pools []*Pool, tokenUse string) (*issuerVerifiers, error) {
	s := &issuerVerifiers{byIssuer: map[string]*Verifier{}, cache: newTokenCache(defaultCacheSize), maxLen: defaultMaxTokenSize}
	owner := map[string]string{}
	for _, p := range pools {
		v := p.Verifier(tokenUse)
		if v == nil {
			return nil, fmt.Errorf("pool %q cannot verify token_use %q", p.name, tokenUse)
		}
		if s.clock == nil {
			s.clock = v
		}
		if v.maxLen > s.maxLen {
			s.maxLen = v.maxLen
		}
		for _, iss := range append([]string{v.cfg.Issuer}, v.cfg.Issuers...) {
			if other, dup := owner[iss]; dup {
				return nil, fmt.Errorf("pools %q and %q have the same issuer %s: list one of them", other, p.name, iss)
			}
			owner[iss] = p.name
			s.byIssuer[iss] = v
		}
	}
	return s, nil
}

// Verify checks token against the pool its iss names, as Verifier.Verify
// does, and returns the identity or a *TokenError (errIssuer for an issuer
// of no listed pool).
func (s *issuerVerifiers) Verify(ctx context.Context, token string) (*Identity, error) {
	if len(token) > s.maxLen {
		return nil, jose.ErrTooLarge
	}
	if token == "" {
		return nil, jose.ErrMalformed
	}
	key := s.cache.key(token)
	now := s.clock.now()
	if id := s.cache.get(key, token, now); id != nil {
		return id, nil
	}
	iss, terr := jose.UnverifiedIssuer(token, s.maxLen)
	if terr != nil {
		return nil, terr
	}
	v := s.byIssuer[iss]
	if v == nil {
		return nil, errIssuer
	}
	if len(token) > v.maxLen {
		return nil, jose.ErrTooLarge
	}
	id, terr := v.verify(ctx, token, now)
	if terr != nil {
		return nil, terr
	}
	s.cache.put(key, token, id, now)
	return id, nil
}
