package session

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/caddy-cognito/caddy-cognito/internal/identity"
	"github.com/caddy-cognito/caddy-cognito/internal/provider"
	"github.com/caddy-cognito/caddy-cognito/userstore"
	"go.uber.org/zap"
)

// refresh renews a session's tokens once its refresh is due. Concurrent
// requests of one session share one refresh (and another instance may have
// done it already: the store is read again first). A refused refresh
// (invalid_grant, an ID token for someone else, no refresh token) ends
// the session; a provider that cannot be reached ends it only once the
// access token has really expired (the refresh is due a little before).
func (m *Manager) refresh(ctx context.Context, s *Live) (*Live, error) {
	v, err, _ := m.refreshes.Do(s.idHash, func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refreshTimeout)
		defer cancel()
		return m.refreshOnce(ctx, s)
	})
	if err != nil {
		return nil, err
	}
	return v.(*Live), nil
}

func (m *Manager) refreshOnce(ctx context.Context, s *Live) (*Live, error) {
	stamp, err := m.store.Changes(ctx, 0)
	if err != nil {
		return nil, err
	}
	sess, err := m.store.GetSession(ctx, s.idHash)
	if errors.Is(err, userstore.ErrNotFound) {
		m.forget(s.rawID)
		return nil, ErrNoSession
	}
	if err != nil {
		return nil, err
	}
	now := time.Now()
	if now.Before(sess.AccessExpiresAt) { // refreshed meanwhile
		return m.load(ctx, s.rawID, stamp)
	}
	// Of several instances refreshing this session at once, the one whose
	// claim moves the stored expiry asks the provider; the others find the
	// refresh no longer due and go on with the session as stored. With
	// rotation this matters: a second refresh with the same token would be
	// refused, and end a session that is fine.
	claimed, err := m.store.ClaimSessionRefresh(ctx, s.idHash, sess.AccessExpiresAt, now.Add(refreshClaim))
	if err != nil {
		if errors.Is(err, userstore.ErrNotFound) {
			m.forget(s.rawID)
			return nil, ErrNoSession
		}
		return nil, err
	}
	if !claimed {
		return m.load(ctx, s.rawID, stamp)
	}
	end := func(reason string, err error) (*Live, error) {
		m.logger.Info("session ended: token refresh failed", zap.String("user", sess.UserID), zap.String("reason", reason), zap.Error(err))
		m.End(ctx, s.rawID)
		return nil, ErrNoSession
	}
	fail := func(reason string, err error) (*Live, error) {
		s.binding.refresh.Refused.Inc()
		return end(reason, err)
	}
	if len(sess.RefreshToken) == 0 {
		return fail("no refresh token", nil)
	}
	rt, err := m.sealer.Open(sess.RefreshToken, []byte(s.idHash))
	if err != nil {
		return fail("refresh token cannot be decrypted (secret changed?)", err)
	}
	client, err := s.binding.Provider.Get(ctx)
	if err != nil {
		return m.graceOrFail(ctx, s, sess, now, err, end)
	}
	ts, err := client.Refresh(ctx, string(rt))
	var oe *provider.OAuthError
	var ie *provider.IDTokenError
	switch {
	case err == nil:
	case errors.As(err, &oe) && oe.Status < 500, errors.As(err, &ie):
		return fail("refused", err)
	default: // unreachable, or a server error
		return m.graceOrFail(ctx, s, sess, now, err, end)
	}
	claims := s.claims
	if !ts.IDTokenMissing {
		idc, err := identity.ParseIDClaims(ts.IDClaims)
		if err != nil || idc.Subject != sess.Sub || idc.Issuer != sess.Issuer {
			return fail("ID token names another user", err)
		}
		claims.ID = ts.IDClaims
	}
	if scope := m.ScopeOf(ctx, ts); scope != "" {
		claims.Scope = scope
	}
	stored, err := json.Marshal(claims)
	if err != nil {
		return nil, err
	}
	var sealed []byte // nil keeps the stored refresh token
	if ts.RefreshRotated {
		sealed = m.sealer.Seal([]byte(ts.RefreshToken), []byte(s.idHash))
	}
	stamp, err = m.store.Changes(ctx, 0)
	if err != nil {
		return nil, err
	}
	if err := m.store.UpdateSessionTokens(ctx, s.idHash, sealed, refreshDue(ts.Expiry, now), stored); err != nil {
		if errors.Is(err, userstore.ErrNotFound) {
			m.forget(s.rawID)
			return nil, ErrNoSession
		}
		return nil, err
	}
	if forward := m.sealForward(ts, s.idHash); forward != nil {
		if err := m.store.SetSessionForwardToken(ctx, s.idHash, forward); err != nil {
			m.logger.Warn("forwarded token not updated at refresh", zap.String("user", sess.UserID), zap.Error(err))
		}
	}
	if m.cfg.Roles != nil && !ts.IDTokenMissing {
		// After the tokens are stored: a rotated refresh token must not
		// be lost to a failed role update, which the next refresh repeats.
		if _, err := m.cfg.Roles.SyncIDClaims(ctx, s.binding.Pool, s.user, ts.IDClaims); err != nil {
			m.logger.Warn("provider roles not updated at refresh", zap.String("user", sess.UserID), zap.Error(err))
		}
	}
	s.binding.refresh.OK.Inc()
	return m.load(ctx, s.rawID, stamp)
}

// graceOrFail: the provider could not be asked. Within the grace window
// (the access token has not expired yet) the session goes on as it is,
// its claim given back (the stored expiry is the one read again) so that
// the window keeps counting from the real due time.
func (m *Manager) graceOrFail(ctx context.Context, s *Live, sess *userstore.Session, now time.Time, err error,
	end func(string, error) (*Live, error)) (*Live, error) {
	s.binding.refresh.Unreachable.Inc()
	if now.Before(sess.AccessExpiresAt.Add(refreshGrace)) {
		m.logger.Warn("token refresh postponed: provider unavailable", zap.Error(err))
		if err := m.store.UpdateSessionTokens(ctx, s.idHash, nil, sess.AccessExpiresAt, nil); err != nil {
			m.logger.Warn("could not give back the refresh claim; it lapses on its own", zap.Error(err))
		}
		return s, nil
	}
	return end("provider unavailable", err)
}

// refreshGrace is how long after the refresh falls due a session may go on
// while the provider cannot be reached: the due time is set at most two
// minutes before the access token expires.
const refreshGrace = time.Minute

// refreshClaim is how long a claimed refresh keeps others from starting
// one (ClaimSessionRefresh): longer than a refresh may take.
const refreshClaim = 2 * refreshTimeout

// ScopeOf returns the scopes a token response granted: its `scope`, or
// for a Cognito pool the verified access token's `scope` claim.
func (m *Manager) ScopeOf(ctx context.Context, ts *provider.TokenSet) string {
	if ts.Scope != "" {
		return ts.Scope
	}
	verify := m.cfg.AccessScopes
	if verify == nil || ts.AccessToken == "" || strings.Count(ts.AccessToken, ".") != 2 {
		return ""
	}
	scopes, err := verify(ctx, ts.AccessToken)
	if err != nil {
		m.logger.Debug("access token not verifiable as a Cognito token", zap.Error(err))
		return ""
	}
	return strings.Join(scopes, " ")
}

// sessionIdentity is the identity a session of pool b hands upstream.
func sessionIdentity(cfg *Binding, sc Claims, user *userstore.User, expires time.Time) *identity.Identity {
	id := &identity.Identity{
		Pool:      cfg.Pool,
		Issuer:    cfg.Issuer,
		ClientID:  cfg.ClientID,
		TokenUse:  "id",
		ExpiresAt: expires,
		RawClaims: sc.ID,
		UserID:    user.ID,
		Roles:     user.Roles,
	}
	id.Scopes = identity.SplitScopes(sc.Scope)
	if c, err := identity.ParseIDClaims(sc.ID); err == nil {
		id.Issuer, id.Subject = c.Issuer, c.Subject
		id.Username = c.Username()
		id.Groups = c.Groups
	}
	// The local user's email, never the token's: that may be unverified,
	// and the local one is only ever taken from a verified claim.
	id.Email, id.EmailVerified = user.Email, user.Email != ""
	return id
}
