package caddycognito

import (
	"context"
	"errors"
	"time"
)

// VerifierConfig holds the rules one Verifier enforces.
type VerifierConfig struct {
	// Pool is the configured pool's name, copied into every Identity.
	Pool string
	// Issuer is the exact `iss` every token must carry.
	Issuer string
	// ClientIDs lists the app clients whose tokens are accepted.
	ClientIDs []string
	// TokenUse is "access" or "id".
	TokenUse string
	// Leeway tolerates clock skew on exp, nbf and iat.
	Leeway time.Duration
	// MaxTokenSize bounds the compact token length in bytes.
	MaxTokenSize int
	// CacheSize bounds the number of verified tokens remembered.
	CacheSize int
	// Now returns the current time; nil means time.Now. Tests set it.
	Now func() time.Time
}

// TokenError says why a token was refused. Reason is safe to show to the
// client (it never contains the token or key material).
type TokenError struct {
	Reason string
	// Unavailable is true when the token could not be checked because the
	// pool's keys could not be had (JWKS unreachable): the request fails
	// closed, and the operator needs to know.
	Unavailable bool
}

func (e *TokenError) Error() string { return e.Reason }

// ErrNoToken is returned by token extraction when the request carries none.
var ErrNoToken = errors.New("no token")

// Verifier checks Cognito tokens of one pool and one token_use.
// It is safe for concurrent use.
type Verifier struct {
	cfg  VerifierConfig
	keys *KeySet
}

// NewVerifier returns a Verifier that takes its keys from keys.
func NewVerifier(keys *KeySet, cfg VerifierConfig) *Verifier {
	return &Verifier{cfg: cfg, keys: keys}
}

// Verify checks token and returns the identity it proves, or a *TokenError.
func (v *Verifier) Verify(ctx context.Context, token string) (*Identity, error) {
	return nil, &TokenError{Reason: "not implemented"}
}
