// Package session keeps the browser sessions of one pool and app client: in the identity store, behind a memory cache trusted only while the store is unchanged, with token refresh.
package session

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/caddy-cognito/caddy-cognito/internal/identity"
	"github.com/caddy-cognito/caddy-cognito/internal/provider"
	"github.com/caddy-cognito/caddy-cognito/internal/seal"
	"github.com/caddy-cognito/caddy-cognito/internal/stampcache"
	"github.com/caddy-cognito/caddy-cognito/userstore"
	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"
)

// ErrNoSession means the request has no live session (no cookie, an
// unknown, expired or ended one, or a disabled user): the caller asks the
// browser to sign in.
var ErrNoSession = errors.New("no live session")

// Store is what the manager needs of the identity store
// (*userstore.Store): the change stamp that keeps the cache honest, the
// sessions, and the user a session belongs to.
type Store interface {
	Changes(ctx context.Context, maxAge time.Duration) (userstore.Stamp, error)
	GetSession(ctx context.Context, idHash string) (*userstore.Session, error)
	GetUserByID(ctx context.Context, id string) (*userstore.User, error)
	TouchSession(ctx context.Context, idHash string, lastSeen, idleExpires time.Time) error
	CreateSession(ctx context.Context, sess userstore.Session) error
	UpdateSessionTokens(ctx context.Context, idHash string, refreshToken []byte, accessExpires time.Time, idTokenClaims json.RawMessage) error
	SetSessionForwardToken(ctx context.Context, idHash string, forwardToken []byte) error
	ClaimSessionRefresh(ctx context.Context, idHash string, seen, until time.Time) (bool, error)
	DeleteSession(ctx context.Context, idHash string) error
	PurgeExpiredSessions(ctx context.Context, now time.Time) (int, error)
}

// Provider hands out the pool's OpenID client for refreshes
// (*provider.Resolver, which finds the endpoints on first use).
type Provider interface {
	Get(ctx context.Context) (*provider.Client, error)
}

// The identity store and the provider resolver are what the handlers pass.
var (
	_ Store    = (*userstore.Store)(nil)
	_ Provider = (*provider.Resolver)(nil)
)

// Config is what the manager needs to know of its pool and handler.
type Config struct {
	// Pool is the pool's name, handed upstream in every identity.
	Pool string
	// Issuer and ClientID are the pool's issuer and the app client sessions
	// are signed in with: a stored session of any other is not one here.
	Issuer, ClientID string
	// Idle ends a session unused this long; Lifetime one this long after
	// sign-in.
	Idle, Lifetime time.Duration
	// ChangeCheckAge bounds how long a change made by another process may
	// go unseen (see userstore.Store.Changes).
	ChangeCheckAge time.Duration
	// AccessScopes verifies an access token as the pool's own and returns
	// its scopes, for a provider (Cognito) whose token response names
	// none. Nil when the pool cannot verify access tokens. With More, it
	// must verify the access tokens of every pool.
	AccessScopes func(ctx context.Context, accessToken string) ([]string, error)
	// More lists further pools whose sessions this manager keeps too (a
	// handler that offers several pools): each session stays bound to the
	// one pool and app client it was signed in with.
	More []Binding
	// Counters count the manager's cache lookups and each pool's
	// refreshes; nil ones count nothing.
	Counters Counters
	// ForwardToken names the token the handler sends upstream: "access",
	// "id", or "" (none, the default: then no token is kept beyond the
	// sealed refresh token). The current one is kept sealed with the
	// session and replaced at every refresh.
	ForwardToken string
	// Roles keeps the user's provider roles in step with the verified ID
	// token claims at sign-in and at every refresh. Nil: no role mapping.
	Roles RoleSync
}

// RoleSync keeps a user's provider-granted roles in step with verified ID
// token claims (*roles.Syncer), reporting whether the store changed; the
// change is audited as the session's pool ("provider:<pool>").
type RoleSync interface {
	SyncIDClaims(ctx context.Context, pool string, user *userstore.User, idClaims json.RawMessage) (bool, error)
}

// Binding is one pool and app client whose sessions a manager keeps, and
// the provider that refreshes and revokes their tokens.
type Binding struct {
	Pool, Issuer, ClientID string
	Provider               Provider
	// refresh counts this pool's refreshes (Counters.Refreshes).
	refresh RefreshCounters
}

// Counter counts one event; a Prometheus counter is one.
type Counter interface{ Inc() }

// Counters are the events a Manager counts.
type Counters struct {
	CacheHit, CacheMiss Counter
	// Refreshes returns the refresh counters of the pool named; nil
	// counts no refresh.
	Refreshes func(pool string) RefreshCounters
}

// RefreshCounters count one pool's refreshes by result.
type RefreshCounters struct{ OK, Refused, Unreachable Counter }

// noCount counts nothing.
type noCount struct{}

func (noCount) Inc() {}

// orNoCount replaces nil counters with ones that count nothing, so the
// request path calls Inc without a check.
func orNoCount(cs ...*Counter) {
	for _, p := range cs {
		if *p == nil {
			*p = noCount{}
		}
	}
}

// Manager keeps browser sessions: in the identity store, with a memory
// cache in front so that a request with a valid session costs a map
// lookup, not a database read. A cached session is used only while the
// store's change stamp is the one it was read at, so a logout or a
// disabled user on this instance takes effect on the very next request
// (and one from another process within Config.ChangeCheckAge).
type Manager struct {
	store    Store
	sealer   *seal.Sealer
	cfg      Config
	bindings []Binding // cfg's own pool first, then cfg.More
	logger   *zap.Logger

	cache     *stampcache.Cache[uint64, *Live] // by cacheKey of the session id
	seed      maphash.Seed
	refreshes singleflight.Group
	loads     atomic.Int64 // store reads of a session, for tests and debugging
	lastPurge atomic.Int64 // unix seconds of the last purge of expired sessions
	touches   touchLog
}

const (
	// sessionCacheTTL bounds how long a cached session is trusted even
	// when the store stamp is unchanged.
	sessionCacheTTL = time.Minute
	// sessionCacheSize and sessionCacheBytes bound the cache by count and
	// by the bytes its entries hold (claims can reach 64 KiB a session);
	// past either, it starts over.
	sessionCacheSize  = 100000
	sessionCacheBytes = 256 << 20
	// sessionEntryOverhead is what size counts for an entry besides its
	// claims: the struct, the user, the identity and its encoded headers.
	sessionEntryOverhead = 2 << 10
	// touchEvery: the idle deadline is moved forward in the store at most
	// this often per session (and per instance: see touchLog); every touch
	// is a write (on SQLite also a change of the store stamp).
	touchEvery = time.Minute
	// refreshTimeout bounds one token refresh.
	refreshTimeout = 15 * time.Second
	// purgeEvery: expired sessions are deleted from the store at a
	// sign-in at most this often (no background goroutine needed).
	purgeEvery = time.Hour
)

// New returns a manager of the sessions of cfg's pool and app client in
// store, whose refresh tokens sealer seals and provider refreshes.
func New(store Store, sealer *seal.Sealer, provider Provider, cfg Config, logger *zap.Logger) *Manager {
	bindings := append([]Binding{{Pool: cfg.Pool, Issuer: cfg.Issuer, ClientID: cfg.ClientID, Provider: provider}}, cfg.More...)
	orNoCount(&cfg.Counters.CacheHit, &cfg.Counters.CacheMiss)
	for i := range bindings {
		if cfg.Counters.Refreshes != nil {
			bindings[i].refresh = cfg.Counters.Refreshes(bindings[i].Pool)
		}
		rc := &bindings[i].refresh
		orNoCount(&rc.OK, &rc.Refused, &rc.Unreachable)
	}
	return &Manager{
		store: store, sealer: sealer, cfg: cfg, bindings: bindings, logger: logger,
		cache: stampcache.New[uint64, *Live](sessionCacheSize, sessionCacheBytes, sessionCacheTTL),
		seed:  maphash.MakeSeed(),
	}
}

// Loads counts the store reads of a session since New, for tests and
// debugging: on the hot path it does not move.
func (m *Manager) Loads() int64 { return m.loads.Load() }

// HashID is how the store knows a session: a database copy holds no
// usable cookie.
func HashID(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

// cacheKey is where the memory cache keeps a session: a seeded maphash of
// its id, a few nanoseconds where SHA-256 costs a few hundred on every
// signed-in request. A hit is confirmed by comparing the ids themselves.
func (m *Manager) cacheKey(rawID string) uint64 { return maphash.String(m.seed, rawID) }

// Current returns the live session of the request, whose id is in the
// cookie named cookieName, refreshing its tokens when they are due.
// ErrNoSession means "sign in"; any other error is the store or provider
// failing.
func (m *Manager) Current(r *http.Request, cookieName string) (*Live, error) {
	raw := CookieValue(r, cookieName)
	if raw == "" {
		return nil, ErrNoSession
	}
	return m.ByID(r.Context(), raw)
}

// ByID returns the live session with this id, as Current does. A cached
// session costs a map lookup; the store is read only on a miss, after a
// change, or when the cached copy's idle deadline has passed.
func (m *Manager) ByID(ctx context.Context, raw string) (*Live, error) {
	stamp, err := m.store.Changes(ctx, m.cfg.ChangeCheckAge)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	s, ok := m.cache.Get(m.cacheKey(raw), stamp, now)
	hit := ok && sameID(s.rawID, raw)
	if hit && !now.Before(s.idleExpires) && now.Before(s.absoluteExpires) {
		// On PostgreSQL a touch is not a store change (userstore's
		// quietWrite): another instance may have moved the idle deadline
		// since this copy was read. The store decides.
		hit = false
	}
	if hit {
		m.cfg.Counters.CacheHit.Inc()
	} else {
		m.cfg.Counters.CacheMiss.Inc()
		if s, err = m.load(ctx, raw, stamp); err != nil {
			return nil, err
		}
	}
	if !now.Before(s.idleExpires) || !now.Before(s.absoluteExpires) {
		m.forget(raw)
		return nil, ErrNoSession
	}
	if !now.Before(s.refreshDue) {
		if s, err = m.refresh(ctx, s); err != nil {
			return nil, err
		}
	}
	if now.Sub(s.lastSeen) >= touchEvery {
		m.touch(ctx, s, now)
	}
	return s, nil
}

// sameID compares session ids in constant time.
func sameID(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	var v byte
	for i := 0; i < len(a); i++ {
		v |= a[i] ^ b[i]
	}
	return v == 0
}

// load reads a session and its user from the store and caches it. stamp
// was taken before the reads, so a change racing with them makes the
// entry stale at once.
func (m *Manager) load(ctx context.Context, raw string, stamp userstore.Stamp) (*Live, error) {
	m.loads.Add(1)
	h := HashID(raw)
	sess, err := m.store.GetSession(ctx, h)
	if err != nil {
		if errors.Is(err, userstore.ErrNotFound) {
			m.forget(raw)
			return nil, ErrNoSession
		}
		return nil, err
	}
	b := m.owner(sess)
	if b == nil {
		// Another pool's or app client's session (a cookie carried over
		// from another site of this server): not a session here.
		m.logger.Debug("session of another pool or client ignored", zap.String("issuer", sess.Issuer), zap.String("client_id", sess.ClientID))
		return nil, ErrNoSession
	}
	user, err := m.store.GetUserByID(ctx, sess.UserID)
	if err != nil {
		if errors.Is(err, userstore.ErrNotFound) {
			m.forget(raw)
			return nil, ErrNoSession
		}
		return nil, err
	}
	var sc Claims
	if len(sess.IDTokenClaims) > 0 {
		if err := json.Unmarshal(sess.IDTokenClaims, &sc); err != nil {
			return nil, fmt.Errorf("session claims: %w", err)
		}
	}
	s := &Live{
		rawID: strings.Clone(raw), idHash: h, stamp: stamp, loadedAt: time.Now(),
		createdAt: sess.CreatedAt, lastSeen: sess.LastSeenAt,
		idleExpires: sess.IdleExpiresAt, absoluteExpires: sess.AbsoluteExpiresAt,
		refreshDue: sess.AccessExpiresAt,
		user:       user,
		claims:     sc,
		binding:    b,
	}
	s.forwardToken = m.openForward(sess, h)
	s.identity = sessionIdentity(b, sc, user, sess.AccessExpiresAt)
	s.identity.HeaderValues() // encoded now, off the hot path of later requests
	m.put(s)
	return s, nil
}

// owner returns the binding (pool and app client) a stored session was
// signed in through, or nil when it is none of this manager's: the only
// sessions it may honour.
func (m *Manager) owner(sess *userstore.Session) *Binding {
	for i := range m.bindings {
		if Owns(sess, m.bindings[i].Issuer, m.bindings[i].ClientID) {
			return &m.bindings[i]
		}
	}
	return nil
}

// bindingOf returns the binding of the pool whose issuer is iss, or nil.
func (m *Manager) bindingOf(iss string) *Binding {
	for i := range m.bindings {
		if m.bindings[i].Issuer == iss {
			return &m.bindings[i]
		}
	}
	return nil
}

// Provider returns the provider of the pool called name, or nil.
func (m *Manager) Provider(name string) Provider {
	for i := range m.bindings {
		if m.bindings[i].Pool == name {
			return m.bindings[i].Provider
		}
	}
	return nil
}

// Owns reports whether a stored session was signed in through the pool
// with this issuer and its app client clientID: the one rule every reader
// of sessions applies, so that a cookie carried from another pool's site
// is no session (a session from before sessions had a client is nobody's).
func Owns(sess *userstore.Session, issuer, clientID string) bool {
	return clientID != "" && sess.Issuer == issuer && sess.ClientID == clientID
}

// put caches s as read at its stamp and time (a touched copy keeps them).
func (m *Manager) put(s *Live) {
	m.cache.Put(m.cacheKey(s.rawID), s, s.stamp, s.loadedAt, s.size())
}

func (m *Manager) forget(raw string) { m.cache.Delete(m.cacheKey(raw)) }

// Create stores a new session for user from a sign-in's tokens (idc their
// verified ID token claims, scope what ScopeOf found granted), signed in
// from r, and returns the session id for the cookie: a new one at every
// sign-in. The session belongs to the pool of the ID token's issuer.
func (m *Manager) Create(ctx context.Context, r *http.Request, user *userstore.User, ts *provider.TokenSet, scope string, idc *identity.IDClaims) (string, error) {
	b := m.bindingOf(idc.Issuer)
	if b == nil {
		return "", fmt.Errorf("session: the ID token's issuer %q is none of this handler's pools", idc.Issuer)
	}
	raw, err := provider.RandomToken(32)
	if err != nil {
		return "", err
	}
	h := HashID(raw)
	if m.cfg.Roles != nil {
		if _, err := m.cfg.Roles.SyncIDClaims(ctx, b.Pool, user, ts.IDClaims); err != nil {
			return "", err
		}
	}
	now := time.Now()
	claims, err := json.Marshal(Claims{ID: ts.IDClaims, Scope: scope})
	if err != nil {
		return "", err
	}
	var sealed []byte
	if ts.RefreshToken != "" {
		sealed = m.sealer.Seal([]byte(ts.RefreshToken), []byte(h))
	}
	forward := m.sealForward(ts, h)
	err = m.store.CreateSession(ctx, userstore.Session{
		IDHash: h, UserID: user.ID, Issuer: idc.Issuer, Sub: idc.Subject, ClientID: b.ClientID,
		CreatedAt: now, LastSeenAt: now,
		IdleExpiresAt: now.Add(m.cfg.Idle), AbsoluteExpiresAt: now.Add(m.cfg.Lifetime),
		AccessExpiresAt: refreshDue(ts.Expiry, now),
		RefreshToken:    sealed, IDTokenClaims: claims, ForwardToken: forward,
		UserAgent: r.UserAgent(), RemoteIP: r.RemoteAddr,
	})
	if err != nil {
		return "", err
	}
	m.purgeExpired(ctx, now)
	return raw, nil
}

// sealForward seals the token of ts that the handler forwards, bound to
// the session (idHash) and to its purpose, so that it cannot pass for a
// refresh token; nil when none is forwarded or ts lacks it.
func (m *Manager) sealForward(ts *provider.TokenSet, idHash string) []byte {
	var tok string
	switch m.cfg.ForwardToken {
	case "access":
		tok = ts.AccessToken
	case "id":
		if !ts.IDTokenMissing {
			tok = ts.IDToken
		}
	}
	if tok == "" {
		return nil
	}
	return m.sealer.Seal([]byte(tok), forwardAD(idHash))
}

// openForward opens a stored session's forwarded token; "" when none is
// forwarded, kept, or it cannot be opened (a changed secret): the session
// then forwards nothing until its next refresh.
func (m *Manager) openForward(sess *userstore.Session, idHash string) string {
	if m.cfg.ForwardToken == "" || len(sess.ForwardToken) == 0 {
		return ""
	}
	tok, err := m.sealer.Open(sess.ForwardToken, forwardAD(idHash))
	if err != nil {
		m.logger.Warn("forwarded token of a session cannot be decrypted (secret changed?); none until its next refresh")
		return ""
	}
	return string(tok)
}

// forwardAD is the associated data a forwarded token is sealed with.
func forwardAD(idHash string) []byte { return []byte("forward:" + idHash) }

// purgeExpired deletes expired sessions, at most once per purgeEvery.
func (m *Manager) purgeExpired(ctx context.Context, now time.Time) {
	last := m.lastPurge.Load()
	if now.Unix()-last < int64(purgeEvery/time.Second) || !m.lastPurge.CompareAndSwap(last, now.Unix()) {
		return
	}
	n, err := m.store.PurgeExpiredSessions(ctx, now)
	if err != nil {
		m.logger.Warn("could not purge expired sessions", zap.Error(err))
		return
	}
	if n > 0 {
		m.logger.Info("purged expired sessions", zap.Int("count", n))
	}
}

// End deletes the session with id raw and returns its refresh token (for
// revocation), or "" when it had none, could not be read, or belongs to
// another pool or client: its token must never go to this one's provider.
func (m *Manager) End(ctx context.Context, raw string) string {
	rt, _, _ := m.EndIn(ctx, raw)
	return rt
}

// EndIn is End that also names the pool the session belonged to ("" when
// none of this manager's), whose provider revokes the token and signs the
// browser out, and its local user (for the security log).
func (m *Manager) EndIn(ctx context.Context, raw string) (refreshToken, pool, userID string) {
	h := HashID(raw)
	if sess, err := m.store.GetSession(ctx, h); err == nil {
		if b := m.owner(sess); b != nil {
			pool, userID = b.Pool, sess.UserID
			if len(sess.RefreshToken) > 0 {
				if rt, err := m.sealer.Open(sess.RefreshToken, []byte(h)); err == nil {
					refreshToken = string(rt)
				}
			}
		}
	}
	if err := m.store.DeleteSession(ctx, h); err != nil && !errors.Is(err, userstore.ErrNotFound) {
		m.logger.Error("could not delete session", zap.Error(err))
	}
	m.forget(raw)
	return refreshToken, pool, userID
}

// refreshDue is when a session's access token should be refreshed: a
// little before it expires (a quarter of its life, at most two minutes).
// An answer without expires_in is refreshed after five minutes.
func refreshDue(expiry, now time.Time) time.Time {
	if expiry.IsZero() {
		return now.Add(5 * time.Minute)
	}
	margin := expiry.Sub(now) / 4
	if margin > 2*time.Minute {
		margin = 2 * time.Minute
	}
	return expiry.Add(-margin)
}
