package userstore

import (
	"os"
	"testing"

	"github.com/caddy-cognito/caddy-cognito/internal/pgtest"
)

// TestMain stops the PostgreSQL server the "postgres" subtests share.
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
