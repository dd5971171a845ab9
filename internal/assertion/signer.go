// Package assertion signs the identity a handler sends upstream as a
// compact ES256 JWT (the `X-Auth-Assertion` header), so that an upstream
// can verify who the caller is instead of trusting plain headers, and
// publishes the public keys as a JWKS.
//
// Signing costs more than the rest of a signed-in request, so a token is
// reused for the same identity and site while more than half its lifetime
// remains (see cache.go).
package assertion

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/caddy-cognito/caddy-cognito/internal/identity"
	"github.com/caddy-cognito/caddy-cognito/internal/urlpolicy"
)

// Lifetime bounds: an assertion is a bearer credential once it leaves
// Caddy, so it must not live long; and a reuse window of half the
// lifetime must be at least a second.
const (
	DefaultLifetime = 60 * time.Second
	MaxLifetime     = 5 * time.Minute
	MinLifetime     = 2 * time.Second
)

// Config is what a Signer is built from.
type Config struct {
	// Keys sign and are published: Keys[0] signs every new token; all of
	// them (the previous ones of a rotation) are in the JWKS for as long
	// as the Signer lives. They are the operator's explicit choice (PEM
	// files), so it is the operator who drops an old one.
	Keys []*ecdsa.PrivateKey
	// Retiring are keys that no longer sign but whose tokens, signed
	// before this config was loaded, may still be alive: the keys derived
	// from previous secrets. They are published for one Lifetime after New
	// (by Now) and then drop out of the set, since no token of theirs can
	// still be valid then (an assertion lives one lifetime); so a key whose
	// secret was rotated out, say after a leak, stops verifying forged
	// tokens that soon, although the secret itself stays configured to
	// open older sessions. A retiring key that is also in Keys stays.
	Retiring []*ecdsa.PrivateKey
	// Issuer is the `iss` of every token; empty means the site's origin
	// (scheme://host as the browser sees it).
	Issuer string
	// Lifetime is exp - iat, whole seconds. Zero means DefaultLifetime.
	Lifetime time.Duration
	// CacheSize bounds the reused tokens. Zero means DefaultCacheSize.
	CacheSize int
	// Now is the clock (tests). Nil means time.Now.
	Now func() time.Time
}

// Signer signs assertions and serves the JWKS. It is safe for concurrent use.
type Signer struct {
	priv   *ecdsa.PrivateKey
	header string // base64url of the signing key's JOSE header, with its kid
	// kids and jwks are what is published until retireAt: Keys, then
	// Retiring; current and currentJWKS what is published from then on:
	// kids[:current], Keys alone.
	kids        []string
	jwks        []byte
	current     int
	currentJWKS []byte
	retireAt    time.Time
	issuer      string
	lifetime    time.Duration
	now         func() time.Time
	cache       *cache
}

// New builds a Signer; it refuses a config without keys, with a key that
// is not P-256, or with a lifetime out of range.
func New(cfg Config) (*Signer, error) {
	if len(cfg.Keys) == 0 {
		return nil, errors.New("assertion: no signing key")
	}
	if cfg.Lifetime == 0 {
		cfg.Lifetime = DefaultLifetime
	}
	if err := CheckLifetime(cfg.Lifetime); err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Signer{priv: cfg.Keys[0], issuer: cfg.Issuer, lifetime: cfg.Lifetime.Truncate(time.Second), now: cfg.Now,
		cache: newCache(cfg.CacheSize)}
	var set []publicJWK
	add := func(what string, i int, k *ecdsa.PrivateKey) error {
		if k == nil || k.Curve == nil || k.Curve.Params().Name != "P-256" {
			return fmt.Errorf("assertion: %s #%d is not a P-256 key", what, i+1)
		}
		j, err := jwkOf(k)
		if err != nil {
			return fmt.Errorf("assertion: %s #%d: %w", what, i+1, err)
		}
		if !slices.Contains(s.kids, j.Kid) { // a key listed twice is published once, as a current one if it is one
			s.kids = append(s.kids, j.Kid)
			set = append(set, j)
		}
		return nil
	}
	for i, k := range cfg.Keys {
		if err := add("key", i, k); err != nil {
			return nil, err
		}
	}
	s.current = len(s.kids)
	for i, k := range cfg.Retiring {
		if err := add("retiring key", i, k); err != nil {
			return nil, err
		}
	}
	s.retireAt = cfg.Now().Add(s.lifetime)
	header, err := json.Marshal(struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		Typ string `json:"typ"`
	}{"ES256", s.kids[0], "JWT"})
	if err != nil {
		return nil, err
	}
	s.header = b64(header)
	if s.jwks, err = marshalSet(set); err != nil {
		return nil, err
	}
	if s.currentJWKS, err = marshalSet(set[:s.current]); err != nil {
		return nil, err
	}
	return s, nil
}

func marshalSet(keys []publicJWK) ([]byte, error) {
	return json.Marshal(struct {
		Keys []publicJWK `json:"keys"`
	}{keys})
}

// CheckLifetime is the lifetime rule: MinLifetime to MaxLifetime.
func CheckLifetime(d time.Duration) error {
	if d < MinLifetime || d > MaxLifetime {
		return fmt.Errorf("assertion lifetime %s is out of range (%s to %s)", d, MinLifetime, MaxLifetime)
	}
	return nil
}

// retired says whether the Retiring keys are no longer published.
func (s *Signer) retired() bool { return !s.now().Before(s.retireAt) }

// KeyIDs are the published key ids, the signing key's first.
func (s *Signer) KeyIDs() []string {
	if s.retired() {
		return slices.Clone(s.kids[:s.current])
	}
	return slices.Clone(s.kids)
}

// Lifetime is exp - iat of every token.
func (s *Signer) Lifetime() time.Duration { return s.lifetime }

// JWKS is the public key set as JSON: {"keys":[…]}, the signing key
// first, the Retiring keys last and only during their one lifetime.
func (s *Signer) JWKS() []byte {
	if s.retired() {
		return s.currentJWKS
	}
	return s.jwks
}

// ServeJWKS answers GET and HEAD with the public key set, anything else
// with 405. The set is public by nature; it is all a verifier needs.
func (s *Signer) ServeJWKS(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "no-cache") // keys change with the config: revalidate
	if r.Method == http.MethodGet {
		_, _ = w.Write(s.JWKS()) // a failed write is the client's loss only
	}
}

// Site is where the request is going as the browser sees it
// (urlpolicy.RequestSite): the token's aud is Host, and without a
// configured issuer its iss is the site's origin.
type Site struct {
	HTTPS bool
	Host  string
}

// Assertion returns the signed assertion of id for site: a token from the
// cache while more than half its lifetime remains, else a new one.
func (s *Signer) Assertion(site Site, id *identity.Identity) (string, error) {
	w := who{https: site.HTTPS, host: canonicalHost(site.HTTPS, site.Host), sub: id.User(), username: id.Username, email: id.Email,
		pool: id.Pool, groups: id.Groups, roles: id.Roles}
	h := s.cache.hash(&w)
	now := s.now()
	if tok, ok := s.cache.get(h, &w, now); ok {
		return tok, nil
	}
	tok, renewAt, err := s.sign(&w, now)
	if err != nil {
		return "", err
	}
	s.cache.put(h, w, tok, renewAt)
	return tok, nil
}

// canonicalHost lower-cases host and drops the scheme's default port:
// Caddy routes every such spelling of a site to the same handler, and each
// must give the same aud (which verifiers compare exactly) and the same
// cached token, not a new signature per spelling a client makes up. It
// allocates only for a host with upper-case letters.
func canonicalHost(https bool, host string) string {
	if https {
		host = strings.TrimSuffix(host, ":443")
	} else {
		host = strings.TrimSuffix(host, ":80")
	}
	for i := 0; i < len(host); i++ {
		if c := host[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(host)
		}
	}
	return host
}

// claims are the token's payload. email_verified accompanies email:
// only verified addresses reach the upstream, and OpenID libraries look
// for the flag.
type claims struct {
	Iss           string   `json:"iss"`
	Sub           string   `json:"sub"`
	Aud           string   `json:"aud"`
	Iat           int64    `json:"iat"`
	Exp           int64    `json:"exp"`
	Jti           string   `json:"jti"`
	Username      string   `json:"username,omitempty"`
	Email         string   `json:"email,omitempty"`
	EmailVerified bool     `json:"email_verified,omitempty"`
	Groups        []string `json:"groups,omitempty"`
	Roles         []string `json:"roles,omitempty"`
	Pool          string   `json:"pool,omitempty"`
}

// sign makes a new token and says when it stops being reused.
func (s *Signer) sign(w *who, now time.Time) (string, time.Time, error) {
	iat := now.Unix()
	c := claims{Iss: s.issuer, Sub: w.sub, Aud: w.host, Iat: iat, Exp: iat + int64(s.lifetime/time.Second),
		Jti: rand.Text(), Username: w.username, Email: w.email, EmailVerified: w.email != "",
		Groups: w.groups, Roles: w.roles, Pool: w.pool}
	if c.Iss == "" {
		c.Iss = urlpolicy.Origin(w.https, w.host)
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", time.Time{}, err
	}
	input := s.header + "." + b64(payload)
	digest := sha256.Sum256([]byte(input))
	r, sv, err := ecdsa.Sign(rand.Reader, s.priv, digest[:])
	if err != nil {
		return "", time.Time{}, fmt.Errorf("assertion: signing: %w", err)
	}
	var sig [64]byte // JWS ES256: r || s, 32 bytes each (RFC 7518 §3.4)
	r.FillBytes(sig[:32])
	sv.FillBytes(sig[32:])
	return input + "." + b64(sig[:]), time.Unix(iat, 0).Add(s.lifetime / 2), nil
}
