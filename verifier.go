package caddycognito

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"math"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/caddy-cognito/caddy-cognito/internal/identity"
)

const (
	defaultMaxTokenSize = 16 << 10
	defaultLeeway       = 10 * time.Second
	defaultCacheSize    = 10000
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

// The reasons a token is refused. Shared values: failures cost no allocation.
var (
	errTooLarge      = &TokenError{Reason: "token too large"}
	errMalformed     = &TokenError{Reason: "malformed token"}
	errAlgorithm     = &TokenError{Reason: "unsupported algorithm"}
	errHeader        = &TokenError{Reason: "unsupported token header"}
	errHeaderSize    = &TokenError{Reason: "token header too large"}
	errSignature     = &TokenError{Reason: "invalid signature"}
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
// Verified tokens are remembered (by SHA-256 of the token) until their exp,
// so a repeated token costs a hash and a map lookup (about 1µs for a
// Cognito-sized token, no allocation). A cached token stays accepted until
// its exp even if its key later leaves the JWKS. The *Identity returned may
// be shared with other requests carrying the same token: callers must treat
// it (its slices and RawClaims included) as read-only and copy it before
// changing anything.
type Verifier struct {
	cfg    VerifierConfig
	keys   *KeySet
	cache  *tokenCache // nil when disabled
	leeway time.Duration
	maxLen int

	sigChecks atomic.Int64 // full verifications attempted (cache misses); tests read it
}

// NewVerifier returns a Verifier that takes its keys from keys.
func NewVerifier(keys *KeySet, cfg VerifierConfig) *Verifier {
	v := &Verifier{cfg: cfg, keys: keys, leeway: cfg.Leeway, maxLen: cfg.MaxTokenSize}
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
		return nil, errTooLarge
	}
	if token == "" {
		return nil, errMalformed
	}
	now := v.now()
	var key uint64
	if v.cache != nil {
		key = v.cache.key(token)
		if id := v.cache.get(key, token, now); id != nil {
			return id, nil
		}
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
	payload, terr := verifyJWS(ctx, v.keys, token, v.maxLen)
	if terr != nil {
		return nil, terr
	}
	c, terr := parseClaims(payload)
	if terr != nil {
		return nil, terr
	}
	return v.check(c, payload, now)
}

var b64 = base64.RawURLEncoding.Strict()

// tokenByte classifies every byte a compact JWS may hold: the base64url
// alphabet and the dot. A table lookup keeps the check, which reads every
// byte of every fresh token, out of the way of the signature check.
var tokenByte = func() (t [256]uint8) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") {
		t[c] = byteAlphabet
	}
	t['.'] = byteDot
	return t
}()

const (
	byteInvalid = iota
	byteAlphabet
	byteDot
)

// verifyJWS checks a compact JWS strictly and returns its payload:
// three non-empty segments of unpadded base64url, a JSON-object header with
// alg RS256, a kid found in keys, nothing that names another key (jwk, jku,
// x5u, x5c) and no crit, and a PKCS#1 v1.5 SHA-256 signature of exactly the
// key's size. The payload is decoded only after the signature holds.
func verifyJWS(ctx context.Context, keys *KeySet, token string, maxSize int) ([]byte, *TokenError) {
	if len(token) > maxSize {
		return nil, errTooLarge
	}
	// Only the base64url alphabet and the two dots: this rules out padding,
	// the standard alphabet and whitespace, which Go's decoder would skip.
	d1, d2 := -1, -1
	for i := 0; i < len(token); i++ {
		switch tokenByte[token[i]] {
		case byteAlphabet:
		case byteDot:
			switch {
			case d1 < 0:
				d1 = i
			case d2 < 0:
				d2 = i
			default:
				return nil, errMalformed // more than three segments
			}
		default:
			return nil, errMalformed
		}
	}
	if d1 <= 0 || d2 < 0 || d2 == d1+1 || d2 == len(token)-1 {
		return nil, errMalformed
	}
	// A JOSE header of ours is under a hundred bytes; whatever is far
	// larger is refused before any work, whatever it holds.
	if d1 > maxHeaderSegment {
		return nil, errHeaderSize
	}
	header, err := b64.DecodeString(token[:d1])
	if err != nil {
		return nil, errMalformed
	}
	kid, terr := checkHeader(header)
	if terr != nil {
		return nil, terr
	}
	if keys == nil {
		return nil, errUnavailable
	}
	sig, err := b64.DecodeString(token[d2+1:])
	if err != nil {
		return nil, errMalformed
	}
	pk, terr := keys.lookup(ctx, kid)
	if terr != nil {
		return nil, terr
	}
	if len(sig) != pk.Size() {
		return nil, errSignature
	}
	digest := sha256.Sum256(unsafe.Slice(unsafe.StringData(token), d2))
	if rsa.VerifyPKCS1v15(pk, crypto.SHA256, digest[:], sig) != nil {
		return nil, errSignature
	}
	payload, err := b64.DecodeString(token[d1+1 : d2])
	if err != nil {
		return nil, errMalformed
	}
	return payload, nil
}

// Bounds of the JOSE header, checked before it is parsed. Cognito's is
// {"kid":"…","alg":"RS256"} (about 80 bytes); other providers add typ.
const (
	maxHeaderSegment = 1024 // base64url characters (768 bytes decoded)
	maxHeaderMembers = 8
)

// checkHeader returns the kid of a JOSE header that passes our rules.
func checkHeader(header []byte) (string, *TokenError) {
	var alg, kid string
	var haveAlg, haveKid bool
	members := 0
	err := forEachMember(header, func(name string, val []byte) error {
		if members++; members > maxHeaderMembers {
			return errHeaderSize
		}
		switch name {
		case "alg":
			s, ok := jsonString(val)
			if !ok {
				return errMalformed
			}
			alg, haveAlg = s, true
		case "kid":
			s, ok := jsonString(val)
			if !ok {
				return errMalformed
			}
			kid, haveKid = s, true
		case "jwk", "jku", "x5u", "x5c", "crit":
			// Keys come from the pool's JWKS only, and we implement no
			// extension that crit could make mandatory.
			return errHeader
		}
		return nil
	})
	if err != nil {
		return "", asTokenError(err)
	}
	if !haveAlg || alg != "RS256" {
		return "", errAlgorithm
	}
	if !haveKid || kid == "" {
		return "", errUnknownKey
	}
	return kid, nil
}

func asTokenError(err error) *TokenError {
	var te *TokenError
	if errors.As(err, &te) {
		return te
	}
	return errMalformed
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

// parseClaims decodes the payload, which must be a JSON object without
// duplicate members; claims of the wrong JSON type are refused, never
// coerced (dates must be numbers).
func parseClaims(payload []byte) (*tokenClaims, *TokenError) {
	c := &tokenClaims{}
	err := forEachMember(payload, func(name string, val []byte) error {
		var ok bool
		switch name {
		case "iss":
			c.iss, ok = jsonString(val)
		case "sub":
			c.sub, ok = jsonString(val)
			c.hasSub = true
		case "token_use":
			c.tokenUse, ok = jsonString(val)
		case "client_id":
			c.clientID, ok = jsonString(val)
		case "azp":
			c.azp, ok = jsonString(val)
			c.hasAzp = true
		case "username":
			c.username, ok = jsonString(val)
		case "cognito:username":
			c.cognitoUsername, ok = jsonString(val)
		case "email":
			c.email, ok = jsonString(val)
		case "scope":
			c.scope, ok = jsonString(val)
		case "exp":
			c.exp, ok = numericDate(val)
			c.hasExp = true
		case "nbf":
			c.nbf, ok = numericDate(val)
			c.hasNbf = true
		case "iat":
			c.iat, ok = numericDate(val)
			c.hasIat = true
		case "aud":
			if s, isStr := jsonString(val); isStr {
				c.aud, ok = []string{s}, true
			} else {
				c.aud, ok = jsonStrings(val)
			}
		case "cognito:groups":
			c.groups, ok = jsonStrings(val)
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
	if err != nil {
		return nil, asTokenError(err)
	}
	return c, nil
}

// check applies the Cognito rules to verified claims and builds the identity.
func (v *Verifier) check(c *tokenClaims, payload []byte, now time.Time) (*Identity, *TokenError) {
	if c.iss != v.cfg.Issuer || c.iss == "" {
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
		id.Scopes = splitScopes(c.scope)
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

func splitScopes(scope string) []string {
	if scope == "" {
		return nil
	}
	return strings.Fields(scope)
}

// numericDate reads a JSON number of seconds since the epoch (RFC 7519
// NumericDate, fractions allowed). Strings and out-of-range values fail.
func numericDate(val []byte) (time.Time, bool) {
	if len(val) == 0 || !(val[0] == '-' || (val[0] >= '0' && val[0] <= '9')) {
		return time.Time{}, false
	}
	f, err := strconv.ParseFloat(unsafe.String(&val[0], len(val)), 64)
	if err != nil || f < 0 || f > 253402300799 { // year 9999
		return time.Time{}, false
	}
	sec := math.Floor(f)
	return time.Unix(int64(sec), int64((f-sec)*1e9)), true
}
