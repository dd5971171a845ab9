package caddycognito

import (
	"context"
	"errors"
	"time"

	"github.com/caddy-cognito/caddy-cognito/internal/metrics"
	"github.com/caddy-cognito/caddy-cognito/internal/roles"
	"github.com/caddy-cognito/caddy-cognito/internal/stampcache"
	"github.com/caddy-cognito/caddy-cognito/userstore"
)

// userMapper maps verified tokens to local users in the identity store.
//
// Lookups are cached so that the mapped path stays close to the stateless
// one, but a cached answer is used only while the store's change stamp is
// the one it was read at. A change made through this Caddy (the admin API)
// changes the stamp at once; a change committed by another process (the
// CLI, another Caddy on the same file) does so for every request that
// starts more than changeCheckAge after it: concurrent requests share one
// look at the database rather than queueing for one each.
type userMapper struct {
	store  *userstore.Store
	issuer string
	// roles keeps a user's provider roles in step with the token's groups
	// (and an ID token's claims). It compares first, so a token whose
	// groups did not change costs no store access.
	roles *roles.Syncer

	cache   *stampcache.Cache[mapKey, *userstore.User] // nil user: no such local user
	lookups metrics.Lookups
}

type mapKey struct {
	serviceAccount bool
	id             string // sub, or the app client id
}

// mapCacheSize bounds the cache; past it, the cache starts over (cheap and
// safe: entries are only ever a shortcut).
const mapCacheSize = 10000

// mapCacheTTL bounds how long an entry lives even when nothing changed.
const mapCacheTTL = time.Minute

// changeCheckAge bounds how long a change made by another process can go
// unseen. Each look at the database costs tens of microseconds of CPU under
// load; at 5 ms that is at most 200 looks a second (a 1 ms window measured
// about 3% of a busy server's CPU), and a change from the CLI is still
// seen by the next request a person could make.
var changeCheckAge = 5 * time.Millisecond

// errNotMapped means the identity has no active local user.
var errNotMapped = errors.New("no active local user")

func newUserMapper(store *userstore.Store, issuer string, rs *roles.Syncer) *userMapper {
	return &userMapper{store: store, issuer: issuer, roles: rs, cache: stampcache.New[mapKey, *userstore.User](mapCacheSize, 0, mapCacheTTL),
		lookups: metrics.Shared().Cache("user")}
}

// keyFor says which store entry a token maps through: a client-credentials
// token (an access token with no user, whose sub is the app client id)
// maps through its service account, every other token through its
// (issuer, sub) identity.
func keyFor(id *Identity) mapKey {
	if id.TokenUse == "access" && id.Username == "" && id.Subject == id.ClientID {
		return mapKey{serviceAccount: true, id: id.ClientID}
	}
	return mapKey{id: id.Subject}
}

// lookup returns the active local user for id, errNotMapped, or an error
// wrapping userstore.ErrUnavailable when the store cannot answer.
func (m *userMapper) lookup(ctx context.Context, id *Identity) (*userstore.User, error) {
	stamp, err := m.store.Changes(ctx, changeCheckAge)
	if err != nil {
		return nil, err
	}
	key := keyFor(id)
	now := time.Now()
	u, ok := m.cache.Get(key, stamp, now)
	if ok {
		m.lookups.Hit.Inc()
	} else {
		m.lookups.Miss.Inc()
		if key.serviceAccount {
			u, err = m.store.LookupServiceAccount(ctx, m.issuer, key.id)
		} else {
			u, err = m.store.LookupIdentity(ctx, m.issuer, key.id)
		}
		switch {
		case errors.Is(err, userstore.ErrNotFound):
			u = nil
		case errors.Is(err, userstore.ErrDisabled):
			// the store returns the disabled user alongside; Active is false
		case err != nil:
			return nil, err
		}
		m.cache.Put(key, u, stamp, now, 1)
	}
	if u == nil || !u.Active {
		return nil, errNotMapped
	}
	if m.roles != nil && !key.serviceAccount {
		changed, err := m.roles.Sync(ctx, id.Pool, u, id, id.TokenUse == "id")
		if err != nil {
			return nil, err
		}
		if changed { // the cached entry is stale now (the stamp moved): read the user as it is
			if u, err = m.store.GetUserByID(ctx, u.ID); err != nil {
				return nil, err
			}
			if !u.Active {
				return nil, errNotMapped
			}
		}
	}
	return u, nil
}
