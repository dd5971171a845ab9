package jose

// TokenError says why a token was refused. Reason is safe to show to the
// client (it never contains the token or key material).
//
// Refusals are shared *TokenError values, so that a failure costs no
// allocation: do not modify them.
type TokenError struct {
	Reason string
	// Unavailable is true when the token could not be checked because the
	// pool's keys could not be had (JWKS unreachable): the request fails
	// closed, and the operator needs to know.
	Unavailable bool
}

func (e *TokenError) Error() string { return e.Reason }

// The refusals of this package that callers also produce or compare with.
var (
	// ErrTooLarge refuses a token longer than the bound it is checked with.
	ErrTooLarge = &TokenError{Reason: "token too large"}
	// ErrMalformed refuses what is not a compact JWS of strict base64url
	// segments holding strict JSON objects.
	ErrMalformed = &TokenError{Reason: "malformed token"}
	// ErrHeaderSize refuses a JOSE header beyond the bounds of a real one.
	ErrHeaderSize = &TokenError{Reason: "token header too large"}
	// ErrSignature refuses a signature that the named key did not make.
	ErrSignature = &TokenError{Reason: "invalid signature"}
)

// The other refusals, which callers only pass on.
var (
	errAlgorithm = &TokenError{Reason: "unsupported algorithm"}
	errHeader    = &TokenError{Reason: "unsupported token header"}
	// errUnavailable reports that no key set was ever fetched: we fail closed.
	errUnavailable = &TokenError{Reason: "signing keys unavailable", Unavailable: true}
	errUnknownKey  = &TokenError{Reason: "unknown signing key"}
)
