package caddycognito

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-cognito/caddy-cognito/internal/metrics"
	"github.com/caddy-cognito/caddy-cognito/userstore"
)

// StoreConfig chooses the identity store: local users, the Cognito
// identities linked to them, their roles and service accounts.
type StoreConfig struct {
	// Driver is the database: `sqlite` (the default, embedded).
	Driver string `json:"driver,omitempty"`

	// Path is the SQLite database file. Default: `cognito/cognito.db`
	// under Caddy's data directory. Placeholders such as `{env.*}` are
	// expanded.
	Path string `json:"path,omitempty"`
}

// resolved fills in the defaults and expands placeholders.
func (c *StoreConfig) resolved() StoreConfig {
	var r StoreConfig
	if c != nil {
		r = *c
	}
	if r.Driver == "" {
		r.Driver = "sqlite"
	}
	r.Path = caddy.NewReplacer().ReplaceKnown(r.Path, "")
	if r.Path == "" {
		r.Path = filepath.Join(caddy.AppDataDir(), "cognito", "cognito.db")
	}
	return r
}

func (c StoreConfig) key() string { return c.Driver + ":" + c.Path }

// storePool shares one open store per database across config reloads.
var storePool = caddy.NewUsagePool()

// sharedStore lets the usage pool close the store after its last user.
type sharedStore struct{ *userstore.Store }

func (s sharedStore) Destruct() error { return s.Close() }

// openStore opens (or shares) the store cfg names. Pair with closeStore.
func openStore(cfg StoreConfig) (*userstore.Store, error) {
	v, _, err := storePool.LoadOrNew(cfg.key(), func() (caddy.Destructor, error) {
		s, err := userstore.Open(context.Background(), userstore.Options{Driver: cfg.Driver, Path: cfg.Path, Observe: metrics.Shared().Store().Observe})
		if err != nil {
			return nil, err
		}
		return sharedStore{s}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("identity store %s: %w", cfg.Path, err)
	}
	return v.(sharedStore).Store, nil
}

func closeStore(cfg StoreConfig) { _, _ = storePool.Delete(cfg.key()) }

// UserStore returns the app's identity store, opening it on first use so
// that a config that maps no users never touches a database.
func (a *App) UserStore() (*userstore.Store, error) {
	a.storeMu.Lock()
	defer a.storeMu.Unlock()
	if a.store != nil {
		return a.store, nil
	}
	cfg := a.Store.resolved()
	s, err := openStore(cfg)
	if err != nil {
		return nil, err
	}
	a.store, a.storeCfg = s, cfg
	return s, nil
}
