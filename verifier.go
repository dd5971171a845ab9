package caddycognito

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/caddy-cognito/caddy-cognito/internal/identity"
	"github.com/caddy-cognito/caddy-cognito/internal/jose"
	"github.com/caddy-cognito/caddy-cognito/internal/metrics"
)

const (
	defaultMaxTokenSize = jose.DefaultMaxTokenSize
	defaultLeeway       = 10 * time.Second
	defaultCacheSize    = 10000
)

// VerifierConfig holds the rules one Verifier enforces.
type VerifierConfig struct {
	// Pool is the configured pool's name, copied into every Identity.
	Pool string
	// Issuer is the exact `iss` every token must carry.
	Issuer string
	// Issuers are other exact `iss` values of the same pool (a Cognito
	// pool's other issuer form), accepted as Issuer is.
	Issuers []string
	// ClientIDs lists the app clients whose tokens are accepted.
	ClientIDs []string
	// TokenUse is "access" or "id".
	TokenUse string
	// Leeway tolerates clock skew on exp, nbf and iat. 0 means 10s;
	// a negative value means no tolerance at all.
	Leeway time.Duration
	// MaxTokenSize bounds the compact token length in bytes. 0 means 16 KiB.
	MaxTokenSize int
	// CacheSize bounds the number of verified tokens remembered. 0 means
	// 10000; a negative value disables the cache.
	CacheSize int
	// Now returns the current time; nil means time.Now. Tests set it.
	Now func() time.Time
}

// TokenError says why a token was refused. Reason is safe to show to the
// client (it never contains the token or key material).
//
// The verifier returns shared *TokenError values: do not modify them.
type TokenError = jose.TokenError

// ErrNoToken is returned by token extraction when the request carries none.
var ErrNoToken = errors.New("no token")

// The reasons a token is refused, beyond those of its signature (jose's).
// Shared values: failures cost no allocation.
var (
	errExpired       = &TokenError{Reason: "token expired"}
	errNotYetValid   = &TokenError{Reason: "token not yet valid"}
	errIssuer        = &TokenError{Reason: "wrong issuer"}
	errTokenUse      = &TokenError{Reason: "wrong token_use"}
	errClient        = &TokenError{Reason: "client not allowed"}
	errSubject       = &TokenError{Reason: "missing subject"}
	errClaimsInvalid = &TokenError{Reason: "invalid claims"}
)

// Verifier checks Cognito tokens of one pool and one token_use.
// It is safe for concurrent use.
//
// Verified tokens are remembered until their exp (see tokenCache), so a
// repeated token costs a hash of its last bytes, a map lookup and a
// compare, without allocating. A cached token stays accepted until
// its exp even if its key later leaves the JWKS. The *Identity returned may
// be shared with other requests carrying the same token: callers must treat
// it (its slices and RawClaims included) as read-only and copy it before
// changing anything.
type Verifier struct {
	cfg    VerifierConfig
	keys   *jose.KeySet
	cache  *tokenCache // nil when disabled
	leeway time.Duration
	maxLen int

	sigChecks atomic.Int64    // full verifications attempted (cache misses); tests read it
	lookups   metrics.Lookups // the token cache's hits and misses
}

// NewVerifier returns a Verifier that takes its keys from keys.
func NewVerifier(keys *jose.KeySet, cfg VerifierConfig) *Verifier {
	v := &Verifier{cfg: cfg, keys: keys, leeway: cfg.Leeway, maxLen: cfg.MaxTokenSize, lookups: metrics.Shared().Cache("token")}
	switch {
	case v.leeway == 0:
		v.leeway = defaultLeeway
	case v.leeway < 0:
		v.leeway = 0
	}
	if v.maxLen <= 0 {
		v.maxLen = defaultMaxTokenSize
	}
	switch {
	case cfg.CacheSize == 0:
		v.cache = newTokenCache(defaultCacheSize)
	case cfg.CacheSize > 0:
		v.cache = newTokenCache(cfg.CacheSize)
	}
	return v
}

func (v *Verifier) now() time.Time {
	if v.cfg.Now != nil {
		return v.cfg.Now()
	}
	return time.Now()
}

// Verify checks token and returns the identity it proves, or a *TokenError.
// The identity is shared read-only (see Verifier).
func (v *Verifier) Verify(ctx context.Context, token string) (*Identity, error) {
	if len(token) > v.maxLen {
		return nil, jose.ErrTooLarge
	}
	if token == "" {
		return nil, jose.ErrMalformed
	}
	now := v.now()
	var key uint64
	if v.cache != nil {
		key = v.cache.key(token)
		if id := v.cache.get(key, token, now); id != nil {
			v.lookups.Hit.Inc()
			return id, nil
		}
		v.lookups.Miss.Inc()
	}
	id, terr := v.verify(ctx, token, now)
	if terr != nil {
		return nil, terr
	}
	if v.cache != nil {
		v.cache.put(key, token, id, now)
	}
	return id, nil
}

func (v *Verifier) verify(ctx context.Context, token string, now time.Time) (*Identity, *TokenError) {
	v.sigChecks.Add(1)
	payload, terr := jose.VerifyJWS(ctx, v.keys, token, v.maxLen)
	if terr != nil {
		return nil, terr
	}
	var c tokenClaims // on the stack: a fresh token allocates only what it keeps
	if terr := parseClaims(payload, &c); terr != nil {
		return nil, terr
	}
	return v.check(&c, payload, now)
}

var errNoExpiry = &TokenError{Reason: "missing exp"}

// tokenClaims are the claims we enforce or copy, decoded from the payload.
type tokenClaims struct {
	iss, sub, tokenUse, clientID, azp string
	username, cognitoUsername, email  string
	scope                             string
	hasSub, hasAzp                    bool
	exp, nbf, iat                     time.Time
	hasExp, hasNbf, hasIat            bool
	aud                               []string
	emailVerified                     bool
	groups                            []string
}

// parseClaims decodes the payload into c, which must be a JSON object
// without duplicate members; claims of the wrong JSON type are refused,
// never coerced (dates must be numbers).
func parseClaims(payload []byte, c *tokenClaims) *TokenError {
	return jose.ForEachMember(payload, func(name string, val []byte) *TokenError {
		var ok bool
		switch name {
		case "iss":
			c.iss, ok = jose.JSONString(val)
		case "sub":
			c.sub, ok = jose.JSONString(val)
			c.hasSub = true
		case "token_use":
			c.tokenUse, ok = jose.JSONString(val)
		case "client_id":
			c.clientID, ok = jose.JSONString(val)
		case "azp":
			c.azp, ok = jose.JSONString(val)
			c.hasAzp = true
		case "username":
			c.username, ok = jose.JSONString(val)
		case "cognito:username":
			c.cognitoUsername, ok = jose.JSONString(val)
		case "email":
			c.email, ok = jose.JSONString(val)
		case "scope":
			c.scope, ok = jose.JSONString(val)
		case "exp":
			c.exp, ok = jose.NumericDate(val)
			c.hasExp = true
		case "nbf":
			c.nbf, ok = jose.NumericDate(val)
			c.hasNbf = true
		case "iat":
			c.iat, ok = jose.NumericDate(val)
			c.hasIat = true
		case "aud":
			if s, isStr := jose.JSONString(val); isStr {
				c.aud, ok = []string{s}, true
			} else {
				c.aud, ok = jose.JSONStrings(val)
			}
		case "cognito:groups":
			c.groups, ok = jose.JSONStrings(val)
		case "email_verified":
			// a bool, or the string userInfo returns: one rule for both
			c.emailVerified, ok = identity.EmailVerified(val), true
		default:
			ok = true
		}
		if !ok {
			return errClaimsInvalid
		}
		return nil
	})
}

// check applies the Cognito rules to verified claims and builds the identity.
func (v *Verifier) check(c *tokenClaims, payload []byte, now time.Time) (*Identity, *TokenError) {
	if !v.issuerOK(c.iss) {
		return nil, errIssuer
	}
	if c.tokenUse != v.cfg.TokenUse || c.tokenUse == "" {
		return nil, errTokenUse
	}
	id := &Identity{
		Pool:      v.cfg.Pool,
		Issuer:    c.iss,
		Subject:   c.sub,
		Groups:    c.groups,
		TokenUse:  c.tokenUse,
		RawClaims: payload,
	}
	switch c.tokenUse {
	case "access":
		if !v.allowed(c.clientID) {
			return nil, errClient
		}
		id.ClientID = c.clientID
		id.Username = c.username
		id.Scopes = identity.SplitScopes(c.scope)
	case "id":
		var matched string
		for _, a := range c.aud {
			if v.allowed(a) {
				matched = a
				break
			}
		}
		if matched == "" {
			return nil, errClient
		}
		// With several audiences the token must say which client it was
		// issued to; an azp, when present, must be one of ours.
		if (len(c.aud) > 1 || c.hasAzp) && !v.allowed(c.azp) {
			return nil, errClient
		}
		if c.hasAzp {
			matched = c.azp
		}
		id.ClientID = matched
		id.Username = c.cognitoUsername
		// An unverified address may be anyone's (a Cognito user can
		// change their own email): only a verified one is passed on.
		if c.emailVerified {
			id.Email, id.EmailVerified = c.email, true
		}
	default:
		return nil, errTokenUse
	}
	if !c.hasExp {
		return nil, errNoExpiry
	}
	if !now.Before(c.exp.Add(v.leeway)) {
		return nil, errExpired
	}
	early := now.Add(v.leeway)
	if (c.hasNbf && early.Before(c.nbf)) || (c.hasIat && early.Before(c.iat)) {
		return nil, errNotYetValid
	}
	if !c.hasSub || c.sub == "" {
		return nil, errSubject
	}
	id.ExpiresAt = c.exp
	return id, nil
}

// issuerOK says whether iss is, exactly, one of the pool's issuers.
func (v *Verifier) issuerOK(iss string) bool {
	if iss == "" {
		return false
	}
	if iss == v.cfg.Issuer {
		return true
	}
	for _, other := range v.cfg.Issuers {
		if iss == other {
			return true
		}
	}
	return false
}

func (v *Verifier) allowed(clientID string) bool {
	if clientID == "" {
		return false
	}
	for _, c := range v.cfg.ClientIDs {
		if c == clientID {
			return true
		}
	}
	return false
}
