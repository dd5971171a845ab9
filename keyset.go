package caddycognito

import (
	"context"
	"errors"

	"github.com/caddyserver/caddy/v2"
	"github.com/coreos/go-oidc/v3/oidc"
)

// KeySet is the cache of one issuer's JSON Web Key Set, shared by every
// config and handler that trusts that issuer (through a caddy.UsagePool),
// and usable by go-oidc as an oidc.KeySet.
type KeySet struct {
	url string
}

var _ oidc.KeySet = (*KeySet)(nil)

// VerifySignature implements oidc.KeySet.
func (k *KeySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	return nil, errors.New("not implemented")
}

// acquireKeySet returns the shared KeySet for jwksURL, creating it (and
// starting its first fetch and background refresh) if no config holds it
// yet. Each successful call must be paired with releaseKeySet.
func acquireKeySet(ctx caddy.Context, jwksURL string) (*KeySet, error) {
	return &KeySet{url: jwksURL}, nil
}

// releaseKeySet gives back one use of the KeySet for jwksURL; the last
// release stops its background refresh.
func releaseKeySet(jwksURL string) {}
