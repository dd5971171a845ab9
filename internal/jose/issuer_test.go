package jose

import (
	"encoding/base64"
	"strings"
	"testing"
)

// TestUnverifiedIssuer: the iss of a token's payload, read without a key
// set, by the strict scanner: a malformed token, a payload that is no
// strict JSON object (duplicate members included) or one without a string
// iss is refused.
func TestUnverifiedIssuer(t *testing.T) {
	seg := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	tok := func(payload string) string { return seg(`{"alg":"RS256","kid":"k"}`) + "." + seg(payload) + ".c2ln" }
	iss, terr := UnverifiedIssuer(tok(`{"sub":"x","iss":"https://issuer.example/p"}`), DefaultMaxTokenSize)
	if terr != nil || iss != "https://issuer.example/p" {
		t.Fatalf("good token: %q, %v", iss, terr)
	}
	for name, bad := range map[string]string{
		"no iss":           tok(`{"sub":"x"}`),
		"iss not a string": tok(`{"iss":1}`),
		"iss twice":        tok(`{"iss":"https://a.example","iss":"https://b.example"}`),
		"not an object":    tok(`["iss"]`),
		"two segments":     seg(`{}`) + "." + seg(`{"iss":"a"}`),
		// Only the payload is decoded here; the other segments are
		// VerifyJWS's to refuse (TestVerifyRejects).
		"padded payload":  seg(`{}`) + "." + seg(`{"iss":"ab"}`) + "=.c2ln",
		"newline":         tok(`{"iss":"a"}`) + "\n",
		"empty signature": strings.TrimSuffix(tok(`{"iss":"a"}`), "c2ln"),
	} {
		if iss, terr := UnverifiedIssuer(bad, DefaultMaxTokenSize); terr == nil {
			t.Errorf("%s: got %q, want a refusal", name, iss)
		}
	}
	if _, terr := UnverifiedIssuer(tok(`{"iss":"a"}`), 10); terr != ErrTooLarge {
		t.Errorf("over the size bound: %v, want %v", terr, ErrTooLarge)
	}
}
