package caddycognito

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-cognito/caddy-cognito/userstore"
)

// StoreConfig chooses the identity store: local users, the Cognito
// identities linked to them, their roles and service accounts.
type StoreConfig struct {
	// Driver is the database: `sqlite` (the default, embedded: one
	// machine) or `postgres` (one database several Caddy instances share;
	// it needs DSN, and the app's `secret`).
	Driver string `json:"driver,omitempty"`

	// Path is the SQLite database file. Default: `cognito/cognito.db`
	// under Caddy's data directory. Placeholders such as `{env.*}` are
	// expanded.
	Path string `json:"path,omitempty"`

	// DSN is the PostgreSQL database, with the `postgres` driver: a URL
	// such as `postgres://user:password@host:5432/db?sslmode=require` or
	// libpq key=value pairs. Use a placeholder (`{env.COGNITO_DATABASE_URL}`)
	// to keep the password out of the config. It never reaches a log: every
	// message shows it with the password masked. Each store needs a
	// database of its own.
	DSN string `json:"dsn,omitempty"`
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
	repl := caddy.NewReplacer()
	if r.Driver == "postgresql" {
		r.Driver = "postgres"
	}
	if r.Driver == "postgres" {
		r.DSN = repl.ReplaceKnown(r.DSN, "")
		return r
	}
	r.Path = repl.ReplaceKnown(r.Path, "")
	if r.Path == "" {
		r.Path = filepath.Join(caddy.AppDataDir(), "cognito", "cognito.db")
	}
	return r
}

func (c StoreConfig) key() string { return c.Driver + ":" + c.Path + ":" + c.DSN }

// where names the store in messages: the file, or the DSN without its
// password.
func (c StoreConfig) where() string {
	if c.Driver == "postgres" {
		return userstore.RedactDSN(c.DSN)
	}
	return c.Path
}

// validate reports a store configuration that cannot work, naming the
// option to fix.
func (c StoreConfig) validate() error {
	switch c.Driver {
	case "sqlite":
		if c.DSN != "" {
			return fmt.Errorf("store: dsn is for the postgres driver; the sqlite store takes a path")
		}
	case "postgres":
		if strings.TrimSpace(c.DSN) == "" {
			return fmt.Errorf("store: the postgres driver needs a dsn (`store postgres <dsn>`), e.g. {env.COGNITO_DATABASE_URL}")
		}
		if c.Path != "" {
			return fmt.Errorf("store: path is for the sqlite driver; the postgres store takes a dsn")
		}
	default:
		return fmt.Errorf("store: unknown driver %q (supported: sqlite, postgres)", c.Driver)
	}
	return nil
}

// storePool shares one open store per database across config reloads.
var storePool = caddy.NewUsagePool()

// sharedStore lets the usage pool close the store after its last user.
type sharedStore struct{ *userstore.Store }

func (s sharedStore) Destruct() error { return s.Close() }

// openStore opens (or shares) the store cfg names. Pair with closeStore.
func openStore(cfg StoreConfig) (*userstore.Store, error) {
	v, _, err := storePool.LoadOrNew(cfg.key(), func() (caddy.Destructor, error) {
		s, err := userstore.Open(context.Background(), userstore.Options{Driver: cfg.Driver, Path: cfg.Path, DSN: cfg.DSN})
		if err != nil {
			return nil, err
		}
		return sharedStore{s}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("identity store %s: %w", cfg.where(), err)
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
