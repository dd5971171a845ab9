package caddycognito

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
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddy-cognito/caddy-cognito/internal/identity"
	"github.com/caddy-cognito/caddy-cognito/internal/provider"
	"github.com/caddy-cognito/caddy-cognito/internal/seal"
	"github.com/caddy-cognito/caddy-cognito/userstore"
	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"
)

// errNoSession: the request has no live session (no cookie, an unknown,
// expired or ended one, or a disabled user). The caller asks to sign in.
var errNoSession = errors.New("no live session")

// sessionManager keeps browser sessions: in the identity store, with a
// memory cache in front so that a request with a valid session costs a map
// lookup, not a database read. A cached session is used only while the
// store's change stamp is the one it was read at, so a logout or a
// disabled user on this instance takes effect on the very next request
// (and one from another process within changeCheckAge).
type sessionManager struct {
	store    *userstore.Store
	sealer   *seal.Sealer
	provider *provider.Resolver
	pool     *Pool
	idle     time.Duration
	lifetime time.Duration
	logger   *zap.Logger

	clientID string // the app client sessions are signed in with (the pool's first)

	mu         sync.RWMutex            // read-locked on the hot path: requests never wait for each other
	cache      map[uint64]*liveSession // by cacheKey of the session id
	cacheBytes int64                   // the entries' size, under mu
	seed       maphash.Seed
	refreshes  singleflight.Group
	loads      atomic.Int64 // store reads of a session, for tests and debugging
	lastPurge  atomic.Int64 // unix seconds of the last purge of expired sessions
}

// liveSession is one session as the handler uses it. It is never changed
// once cached: a touch or a refresh caches a new one.
type liveSession struct {
	rawID    string // the cookie's session id, to confirm a cache hit
	idHash   string // how the store knows it
	stamp    userstore.Stamp
	loadedAt time.Time

	createdAt, lastSeen          time.Time
	idleExpires, absoluteExpires time.Time
	refreshDue                   time.Time
	user                         *userstore.User
	identity                     *Identity
	headers                      identity.HeaderValues // the identity's encoded header values
	claims                       sessionClaims
}

// sessionClaims is what a session keeps of its tokens (as the store's
// id_token_claims): the last verified ID token claims, and the granted
// scopes, which only the token response or the access token carry.
type sessionClaims struct {
	ID    json.RawMessage `json:"id"`
	Scope string          `json:"scope,omitempty"`
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
	// this often per session; every touch is a write, and a write changes
	// the store stamp for every cache.
	touchEvery = time.Minute
	// refreshTimeout bounds one token refresh.
	refreshTimeout = 15 * time.Second
	// purgeEvery: expired sessions are deleted from the store at a
	// sign-in at most this often (no background goroutine needed).
	purgeEvery = time.Hour
)

func newSessionManager(store *userstore.Store, sealer *seal.Sealer, provider *provider.Resolver, pool *Pool, idle, lifetime time.Duration, logger *zap.Logger) *sessionManager {
	return &sessionManager{
		store: store, sealer: sealer, provider: provider, pool: pool, clientID: pool.clientIDs[0],
		idle: idle, lifetime: lifetime, logger: logger,
		cache: make(map[uint64]*liveSession), seed: maphash.MakeSeed(),
	}
}

// hashSessionID is how the store knows a session: a database copy holds no
// usable cookie.
func hashSessionID(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

// cacheKey is where the memory cache keeps a session: a seeded maphash of
// its id, a few nanoseconds where SHA-256 costs a few hundred on every
// signed-in request. A hit is confirmed by comparing the ids themselves.
func (m *sessionManager) cacheKey(rawID string) uint64 { return maphash.String(m.seed, rawID) }

// current returns the live session of the request, refreshing its tokens
// when they are due. errNoSession means "sign in"; any other error is the
// store or provider failing.
func (m *sessionManager) current(r *http.Request, cookieName string) (*liveSession, error) {
	raw := sessionCookieValue(r, cookieName)
	if raw == "" {
		return nil, errNoSession
	}
	return m.byID(r.Context(), raw)
}

// byID returns the live session with this id. A cached session costs a
// map lookup; the store is read only on a miss or after a change.
func (m *sessionManager) byID(ctx context.Context, raw string) (*liveSession, error) {
	stamp, err := m.store.Changes(ctx, changeCheckAge)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	m.mu.RLock()
	s := m.cache[m.cacheKey(raw)]
	m.mu.RUnlock()
	if s == nil || !sameID(s.rawID, raw) || s.stamp != stamp || now.Sub(s.loadedAt) > sessionCacheTTL {
		if s, err = m.load(ctx, raw, stamp); err != nil {
			return nil, err
		}
	}
	if !now.Before(s.idleExpires) || !now.Before(s.absoluteExpires) {
		m.forget(raw)
		return nil, errNoSession
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
func (m *sessionManager) load(ctx context.Context, raw string, stamp userstore.Stamp) (*liveSession, error) {
	m.loads.Add(1)
	h := hashSessionID(raw)
	sess, err := m.store.GetSession(ctx, h)
	if err != nil {
		if errors.Is(err, userstore.ErrNotFound) {
			m.forget(raw)
			return nil, errNoSession
		}
		return nil, err
	}
	if !m.owns(sess) {
		// Another pool's or app client's session (a cookie carried over
		// from another site of this server): not a session here.
		m.logger.Debug("session of another pool or client ignored", zap.String("issuer", sess.Issuer), zap.String("client_id", sess.ClientID))
		return nil, errNoSession
	}
	user, err := m.store.GetUserByID(ctx, sess.UserID)
	if err != nil {
		if errors.Is(err, userstore.ErrNotFound) {
			m.forget(raw)
			return nil, errNoSession
		}
		return nil, err
	}
	var sc sessionClaims
	if len(sess.IDTokenClaims) > 0 {
		if err := json.Unmarshal(sess.IDTokenClaims, &sc); err != nil {
			return nil, fmt.Errorf("session claims: %w", err)
		}
	}
	s := &liveSession{
		rawID: strings.Clone(raw), idHash: h, stamp: stamp, loadedAt: time.Now(),
		createdAt: sess.CreatedAt, lastSeen: sess.LastSeenAt,
		idleExpires: sess.IdleExpiresAt, absoluteExpires: sess.AbsoluteExpiresAt,
		refreshDue: sess.AccessExpiresAt,
		user:       user,
		claims:     sc,
	}
	s.identity = sessionIdentity(m.pool, sc, user, sess.AccessExpiresAt)
	s.headers = identity.EncodeHeaders(s.identity)
	m.put(s)
	return s, nil
}

// owns reports whether a stored session was signed in through this
// manager's pool and app client, the only sessions it may honour.
func (m *sessionManager) owns(sess *userstore.Session) bool {
	return sess.Issuer == m.pool.issuer && sess.ClientID == m.clientID
}

func (m *sessionManager) put(s *liveSession) {
	k := m.cacheKey(s.rawID)
	size := s.size()
	m.mu.Lock()
	if len(m.cache) >= sessionCacheSize || m.cacheBytes+size > sessionCacheBytes {
		m.cache = make(map[uint64]*liveSession)
		m.cacheBytes = 0
	}
	if old := m.cache[k]; old != nil {
		m.cacheBytes -= old.size()
	}
	m.cache[k] = s
	m.cacheBytes += size
	m.mu.Unlock()
}

func (m *sessionManager) forget(raw string) {
	k := m.cacheKey(raw)
	m.mu.Lock()
	if old := m.cache[k]; old != nil {
		m.cacheBytes -= old.size()
		delete(m.cache, k)
	}
	m.mu.Unlock()
}

// size estimates the memory a cached session holds: its claims (up to the
// store's 64 KiB) dominate, so they are what the byte bound counts, with
// a fixed allowance for the rest.
func (s *liveSession) size() int64 {
	return int64(len(s.claims.ID)+len(s.claims.Scope)) + sessionEntryOverhead
}

// touch moves the idle deadline forward. A failed touch is logged and
// otherwise ignored: the session is still valid until its old deadline.
func (m *sessionManager) touch(ctx context.Context, s *liveSession, now time.Time) {
	idle := now.Add(m.idle)
	if idle.After(s.absoluteExpires) {
		idle = s.absoluteExpires
	}
	if err := m.store.TouchSession(ctx, s.idHash, now, idle); err != nil {
		m.logger.Warn("could not extend session", zap.Error(err))
		return
	}
	c := *s
	c.lastSeen, c.idleExpires = now, idle
	m.put(&c)
}

// create stores a new session for user from a sign-in's tokens and
// returns the session id for the cookie (a new one at every sign-in).
func (m *sessionManager) create(ctx context.Context, r *http.Request, user *userstore.User, ts *provider.TokenSet, scope string, idc *identity.IDClaims) (string, error) {
	raw, err := provider.RandomToken(32)
	if err != nil {
		return "", err
	}
	h := hashSessionID(raw)
	now := time.Now()
	claims, err := json.Marshal(sessionClaims{ID: ts.IDClaims, Scope: scope})
	if err != nil {
		return "", err
	}
	var sealed []byte
	if ts.RefreshToken != "" {
		sealed = m.sealer.Seal([]byte(ts.RefreshToken), []byte(h))
	}
	err = m.store.CreateSession(ctx, userstore.Session{
		IDHash: h, UserID: user.ID, Issuer: idc.Issuer, Sub: idc.Subject, ClientID: m.clientID,
		CreatedAt: now, LastSeenAt: now,
		IdleExpiresAt: now.Add(m.idle), AbsoluteExpiresAt: now.Add(m.lifetime),
		AccessExpiresAt: refreshDue(ts.Expiry, now),
		RefreshToken:    sealed, IDTokenClaims: claims,
		UserAgent: r.UserAgent(), RemoteIP: r.RemoteAddr,
	})
	if err != nil {
		return "", err
	}
	m.purgeExpired(ctx, now)
	return raw, nil
}

// purgeExpired deletes expired sessions, at most once per purgeEvery.
func (m *sessionManager) purgeExpired(ctx context.Context, now time.Time) {
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

// end deletes the session with id raw and returns its refresh token (for
// revocation), or "" when it had none, could not be read, or belongs to
// another pool or client: its token must never go to this one's provider.
func (m *sessionManager) end(ctx context.Context, raw string) string {
	h := hashSessionID(raw)
	var refreshToken string
	if sess, err := m.store.GetSession(ctx, h); err == nil && m.owns(sess) && len(sess.RefreshToken) > 0 {
		if rt, err := m.sealer.Open(sess.RefreshToken, []byte(h)); err == nil {
			refreshToken = string(rt)
		}
	}
	if err := m.store.DeleteSession(ctx, h); err != nil && !errors.Is(err, userstore.ErrNotFound) {
		m.logger.Error("could not delete session", zap.Error(err))
	}
	m.forget(raw)
	return refreshToken
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
