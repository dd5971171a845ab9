package jose

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"unsafe"
)

// DefaultMaxTokenSize bounds a compact token when the caller sets no bound
// of its own (go-oidc, through KeySet.VerifySignature, sets none).
const DefaultMaxTokenSize = 16 << 10

var b64 = base64.RawURLEncoding.Strict()

// VerifyJWS checks a compact JWS of at most maxSize bytes strictly and
// returns its payload: three non-empty segments of unpadded base64url, a
// JSON-object header with alg RS256, a kid found in keys, nothing that
// names another key (jwk, jku, x5u, x5c) and no crit, and a PKCS#1 v1.5
// SHA-256 signature of exactly the key's size. The payload is parsed only
// after the signature holds. A nil keys fails closed (Unavailable) once
// the token's own shape has been checked.
func VerifyJWS(ctx context.Context, keys *KeySet, token string, maxSize int) ([]byte, *TokenError) {
	if len(token) > maxSize {
		return nil, ErrTooLarge
	}
	d1, d2, terr := splitCompact(token)
	if terr != nil {
		return nil, terr
	}
	// A JOSE header of ours is under a hundred bytes; whatever is far
	// larger is refused before any work, whatever it holds.
	if d1 > maxHeaderSegment {
		return nil, ErrHeaderSize
	}
	header, err := b64.DecodeString(token[:d1])
	if err != nil {
		return nil, ErrMalformed
	}
	kid, terr := checkHeader(header)
	if terr != nil {
		return nil, terr
	}
	if keys == nil {
		return nil, errUnavailable
	}
	// The signature is only read, by the check below: decoded on the
	// stack for keys up to 4096 bits, so that a fresh token allocates
	// only what it keeps (its payload).
	var sigBuf [512]byte
	sig, err := decodeInto(sigBuf[:], token[d2+1:])
	if err != nil {
		return nil, ErrMalformed
	}
	pk, terr := keys.lookup(ctx, kid)
	if terr != nil {
		return nil, terr
	}
	if len(sig) != pk.size {
		return nil, ErrSignature
	}
	// Decoded (not parsed) before the signature check, so that a payload
	// outside base64url is malformed, as the other segments are.
	payload, err := b64.DecodeString(token[d1+1 : d2])
	if err != nil {
		return nil, ErrMalformed
	}
	digest := sha256.Sum256(unsafe.Slice(unsafe.StringData(token), d2)) //nolint:gosec // G103: a read-only view of the signed part; Sum256 neither writes nor keeps it
	if !pk.verifyPKCS1v15SHA256(&digest, sig) {
		return nil, ErrSignature
	}
	return payload, nil
}

// decodeInto decodes the base64url segment s into buf when it fits, else
// into a new slice, with the same strict rules as b64.DecodeString.
func decodeInto(buf []byte, s string) ([]byte, error) {
	if n := b64.DecodedLen(len(s)); n > len(buf) {
		buf = make([]byte, n)
	}
	n, err := b64.Decode(buf, unsafe.Slice(unsafe.StringData(s), len(s))) //nolint:gosec // G103: a read-only view of the segment; Decode neither writes nor keeps src
	return buf[:n], err
}

// splitCompact returns the positions of the two dots of a compact JWS
// whose three segments are non-empty and hold no CR or LF. The rest of
// the base64url rule is the strict decoder's, which every caller runs on
// every segment it reads (padding, the standard alphabet and any other
// byte fail it), except for CR and LF, which Go's decoder skips: those are
// refused here. Each search is a vectorised byte scan, where a check of
// every byte against the alphabet cost 13 instructions per byte of every
// fresh token.
func splitCompact(token string) (d1, d2 int, terr *TokenError) {
	if strings.IndexByte(token, '\n') >= 0 || strings.IndexByte(token, '\r') >= 0 {
		return 0, 0, ErrMalformed
	}
	d1 = strings.IndexByte(token, '.')
	if d1 <= 0 {
		return 0, 0, ErrMalformed
	}
	i := strings.IndexByte(token[d1+1:], '.')
	if i <= 0 {
		return 0, 0, ErrMalformed
	}
	d2 = d1 + 1 + i
	if d2 == len(token)-1 || strings.IndexByte(token[d2+1:], '.') >= 0 {
		return 0, 0, ErrMalformed // an empty signature, or more than three segments
	}
	return d1, d2, nil
}

// UnverifiedIssuer returns the `iss` of a compact JWS of at most maxSize
// bytes WITHOUT checking its signature: only to choose which issuer's keys
// and rules must verify it next (a handler that trusts several pools). It
// decodes only the payload (the other segments are VerifyJWS's to refuse),
// reads it with the same strict scanner as the verified claims,
// touches no key set, and refuses a token without a string iss
// (ErrMalformed); an attacker may put any issuer here, which only picks
// whose verification fails.
func UnverifiedIssuer(token string, maxSize int) (string, *TokenError) {
	if len(token) > maxSize {
		return "", ErrTooLarge
	}
	d1, d2, terr := splitCompact(token)
	if terr != nil {
		return "", terr
	}
	payload, err := b64.DecodeString(token[d1+1 : d2])
	if err != nil {
		return "", ErrMalformed
	}
	var iss string
	found := false
	terr = ForEachMember(payload, func(name string, val []byte) *TokenError {
		if name != "iss" {
			return nil
		}
		s, ok := JSONString(val)
		if !ok {
			return ErrMalformed
		}
		iss, found = s, true
		return nil
	})
	if terr != nil {
		return "", terr
	}
	if !found {
		return "", ErrMalformed
	}
	return iss, nil
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
	terr := ForEachMember(header, func(name string, val []byte) *TokenError {
		if members++; members > maxHeaderMembers {
			return ErrHeaderSize
		}
		switch name {
		case "alg":
			s, ok := JSONString(val)
			if !ok {
				return ErrMalformed
			}
			alg, haveAlg = s, true
		case "kid":
			s, ok := JSONString(val)
			if !ok {
				return ErrMalformed
			}
			kid, haveKid = s, true
		case "jwk", "jku", "x5u", "x5c", "crit":
			// Keys come from the pool's JWKS only, and we implement no
			// extension that crit could make mandatory.
			return errHeader
		}
		return nil
	})
	if terr != nil {
		return "", terr
	}
	if !haveAlg || alg != "RS256" {
		return "", errAlgorithm
	}
	if !haveKid || kid == "" {
		return "", errUnknownKey
	}
	return kid, nil
}
