package session

import (
	"encoding/json"
	"time"

	"github.com/caddy-cognito/caddy-cognito/internal/identity"
	"github.com/caddy-cognito/caddy-cognito/userstore"
)

// Live is one live session as the handlers use it. It is never changed
// once cached: a touch or a refresh caches a new one.
type Live struct {
	rawID    string // the cookie's session id, to confirm a cache hit
	idHash   string // how the store knows it
	stamp    userstore.Stamp
	loadedAt time.Time

	createdAt, lastSeen          time.Time
	idleExpires, absoluteExpires time.Time
	refreshDue                   time.Time
	user                         *userstore.User
	identity                     *identity.Identity
	claims                       Claims
	forwardToken                 string   // the token sent upstream (forward_token), or ""
	binding                      *Binding // the pool and app client it was signed in with
}

// ForwardToken is the session's current access or ID token, as the
// handler's forward_token asks; "" when none is forwarded or kept yet.
func (s *Live) ForwardToken() string { return s.forwardToken }

// Pool is the name of the pool the session was signed in with.
func (s *Live) Pool() string { return s.binding.Pool }

// Identity is who the session's user is, as handed upstream.
func (s *Live) Identity() *identity.Identity { return s.identity }

// Headers are the identity's header values, encoded once, when the
// session was loaded (the hot path only copies them).
func (s *Live) Headers() *identity.HeaderValues { return s.identity.HeaderValues() }

// User is the local user the session belongs to.
func (s *Live) User() *userstore.User { return s.user }

// IDClaims are the session's last verified ID token claims.
func (s *Live) IDClaims() json.RawMessage { return s.claims.ID }

// CreatedAt is when the user signed in.
func (s *Live) CreatedAt() time.Time { return s.createdAt }

// IdleExpiresAt is when the session ends unless it is used before.
func (s *Live) IdleExpiresAt() time.Time { return s.idleExpires }

// AbsoluteExpiresAt is when the session ends however busy.
func (s *Live) AbsoluteExpiresAt() time.Time { return s.absoluteExpires }

// Claims is what a session keeps of its tokens (as the store's
// id_token_claims): the last verified ID token claims, and the granted
// scopes, which only the token response or the access token carry.
type Claims struct {
	ID    json.RawMessage `json:"id"`
	Scope string          `json:"scope,omitempty"`
}

// size estimates the memory a cached session holds: its claims (up to the
// store's 64 KiB), their copy as groups, and the encoded header values
// (up to three bytes for one), with a fixed allowance for the rest.
func (s *Live) size() int64 {
	n := len(s.claims.ID) + len(s.claims.Scope) + len(s.forwardToken)
	if s.identity != nil {
		for _, g := range s.identity.Groups {
			n += len(g) + 16
		}
	}
	if s.identity != nil {
		for _, v := range s.identity.HeaderValues() {
			n += len(v)
		}
	}
	return int64(n) + sessionEntryOverhead
}
