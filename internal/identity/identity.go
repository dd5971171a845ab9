// Package identity holds the verified caller of a request, the ID-token claims sign-in
// reads, and the rule that turns an identity into upstream headers.
package identity

import (
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Identity is the verified caller of one request: who Cognito says they are,
// and (when the identity store maps them) who they are on this site. Every
// handler of the plugin ends by producing one, and it is what reaches the
// upstream as placeholders and headers.
type Identity struct {
	// Pool is the name of the configured pool that issued the token.
	Pool string
	// Issuer is the token's exact `iss`.
	Issuer string
	// Subject is the token's `sub`: the Cognito user's id, or the app
	// client id for a client-credentials token.
	Subject string
	// Username is `username` (access token) or `cognito:username` (ID token).
	Username string
	// Email is a verified address or empty: an ID token's `email` only
	// when its `email_verified` is true (access tokens carry none), and
	// for a browser session the local user's email (kept only when
	// verified). EmailVerified says the token vouched for it.
	Email         string
	EmailVerified bool
	// Groups is `cognito:groups`.
	Groups []string
	// Scopes is the space-separated `scope` claim of an access token, split.
	Scopes []string
	// ClientID is `client_id` (access token) or the matching `aud` (ID token).
	ClientID string
	// TokenUse is `token_use`: "access" or "id".
	TokenUse string
	// ExpiresAt is `exp`.
	ExpiresAt time.Time

	// UserID and Roles are set when the identity store maps the identity
	// to a local user; empty otherwise.
	UserID string
	Roles  []string

	// RawClaims is the token's JSON payload, exactly as signed. Individual
	// claims are decoded from it lazily, only when a placeholder asks.
	RawClaims json.RawMessage

	claimsOnce sync.Once
	claims     map[string]any

	// A verified identity is shared by every request with the same token
	// (the token cache), so what is derived from it is derived once: the
	// encoded header values, and the copy naming the local user.
	headersOnce sync.Once
	headers     HeaderValues
	mapped      atomic.Pointer[Identity]
}

// HeaderValues returns the identity's encoded header values, computed on
// first use. The identity must not change after the first call.
func (id *Identity) HeaderValues() *HeaderValues {
	id.headersOnce.Do(func() { id.headers = EncodeHeaders(id) })
	return &id.headers
}

// Claim returns the named claim rendered as a string: strings as they are,
// numbers and booleans in JSON form, arrays joined with commas, objects as
// JSON. The second result is false when the token has no such claim.
func (id *Identity) Claim(name string) (string, bool) {
	v, ok := id.claim(name)
	if !ok {
		return "", false
	}
	return claimString(v), true
}

// ClaimHasAny reports whether the named claim is a string equal to one of
// values, or a list with an item equal to one of them. Other values
// compare in their JSON form (true, 42); a missing claim has none.
func (id *Identity) ClaimHasAny(name string, values []string) bool {
	v, ok := id.claim(name)
	if !ok {
		return false
	}
	items, isList := v.([]any)
	if !isList {
		items = []any{v}
	}
	for _, item := range items {
		s := claimString(item)
		for _, want := range values {
			if s == want {
				return true
			}
		}
	}
	return false
}

// claim decodes the claims once, when first asked, and returns one.
func (id *Identity) claim(name string) (any, bool) {
	id.claimsOnce.Do(func() {
		var m map[string]any
		if json.Unmarshal(id.RawClaims, &m) == nil {
			id.claims = m
		}
	})
	v, ok := id.claims[name]
	return v, ok
}

func claimString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = claimString(e)
		}
		return strings.Join(parts, ",")
	case nil:
		return ""
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

// WithLocalUser returns a copy of id that also names its local user and
// that user's roles. A verified identity is shared through the token cache,
// so it is never changed in place; the copy is kept and returned again
// while the user and roles asked for stay the same, so that the requests
// of one token share it (and its encoded headers) too.
func (id *Identity) WithLocalUser(userID string, roles []string) *Identity {
	if m := id.mapped.Load(); m != nil && m.UserID == userID && slices.Equal(m.Roles, roles) {
		return m
	}
	m := id.withLocalUser(userID, roles)
	id.mapped.Store(m)
	return m
}

func (id *Identity) withLocalUser(userID string, roles []string) *Identity {
	return &Identity{
		Pool:          id.Pool,
		Issuer:        id.Issuer,
		Subject:       id.Subject,
		Username:      id.Username,
		Email:         id.Email,
		EmailVerified: id.EmailVerified,
		Groups:        id.Groups,
		Scopes:        id.Scopes,
		ClientID:      id.ClientID,
		TokenUse:      id.TokenUse,
		ExpiresAt:     id.ExpiresAt,
		RawClaims:     id.RawClaims,
		UserID:        userID,
		Roles:         roles,
	}
}

// User is who the upstream is told the caller is (X-Auth-User, and the
// assertion's sub): the local user id when the identity is mapped to
// one, else the token's sub.
func (id *Identity) User() string {
	if id.UserID != "" {
		return id.UserID
	}
	return id.Subject
}

// HasAnyGroup reports whether the identity is in at least one of groups.
func (id *Identity) HasAnyGroup(groups []string) bool { return hasAny(id.Groups, groups) }

// HasAnyScope reports whether the identity holds at least one of scopes.
func (id *Identity) HasAnyScope(scopes []string) bool { return hasAny(id.Scopes, scopes) }

// HasAnyRole reports whether the local user holds at least one of roles.
func (id *Identity) HasAnyRole(roles []string) bool { return hasAny(id.Roles, roles) }

func hasAny(have, want []string) bool {
	for _, w := range want {
		for _, h := range have {
			if h == w {
				return true
			}
		}
	}
	return false
}

// SplitScopes splits an OAuth `scope` value; none is nil, not empty, so
// that every identity without scopes looks the same.
func SplitScopes(scope string) []string {
	if scope == "" {
		return nil
	}
	return strings.Fields(scope)
}
