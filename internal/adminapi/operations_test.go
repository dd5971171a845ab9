package adminapi

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddy-cognito/caddy-cognito/userstore"
)

func TestStatusFor(t *testing.T) {
	for err, status := range map[error]int{
		userstore.ErrNotFound: 404, userstore.ErrConflict: 409, userstore.ErrInvalid: 400,
		userstore.ErrUnavailable: 503, fmt.Errorf("x: %w", errBadRequest): 400,
		ErrNoRoute: 404, &mediaTypeError{"POST /x"}: 415,
	} {
		if got := StatusFor(fmt.Errorf("wrapped: %w", err)); got != status {
			t.Errorf("%v → %d; want %d", err, got, status)
		}
	}
}

// TestDoRefusesBeforeTheStore: an unknown route and a change without a
// JSON content type are answered without opening the store.
func TestDoRefusesBeforeTheStore(t *testing.T) {
	opened := 0
	api := New(Config{Store: func() (*userstore.Store, error) { opened++; return nil, userstore.ErrUnavailable }})
	for _, c := range []struct {
		method, path, ct string
		want             int
	}{
		{"GET", "/cognito/nothing", "", 404},
		{"POST", "/cognito/users", "text/plain", 415},
		{"POST", "/cognito/users", "", 415},
		{"DELETE", "/cognito/users/x/sessions", "application/x-www-form-urlencoded", 415},
	} {
		r := httptest.NewRequest(c.method, c.path, strings.NewReader("{}"))
		if c.ct != "" {
			r.Header.Set("Content-Type", c.ct)
		}
		if _, _, err := api.Do(r, "test"); StatusFor(err) != c.want {
			t.Errorf("%s %s (%q): %v → %d, want %d", c.method, c.path, c.ct, err, StatusFor(err), c.want)
		}
	}
	if opened != 0 {
		t.Errorf("the store was opened %d times for refused requests", opened)
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"72h": 72 * time.Hour, "30d": 720 * time.Hour, "1d12h": 36 * time.Hour, "90m": 90 * time.Minute} {
		if got, err := parseDuration(in); err != nil || got != want {
			t.Errorf("%q: %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "d", "-1d", "1.5d", "x", "1dd", "01d"} {
		if got, err := parseDuration(bad); err == nil {
			t.Errorf("%q accepted as %v", bad, got)
		}
	}
}
