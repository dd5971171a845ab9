package health

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/caddy-cognito/caddy-cognito/internal/jose"
)

type fixedKeys jose.KeyStats

func (f fixedKeys) Stats() jose.KeyStats { return jose.KeyStats(f) }

func TestHealthy(t *testing.T) {
	at := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
	c := New(map[string]KeySource{"main": fixedKeys{Keys: 2, FetchedAt: at}},
		func(context.Context) (bool, error) { return true, nil })
	r := c.Check(context.Background())
	want := Report{Status: "ok", Pools: map[string]Pool{"main": {Keys: 2, KeysFetchedAt: &at}}, Store: "ok"}
	if !reflect.DeepEqual(r, want) {
		t.Fatalf("report = %+v, want %+v", r, want)
	}
	if r.HTTPStatus() != http.StatusOK || r.Summary()["status"] != "ok" {
		t.Fatalf("status %d, summary %v", r.HTTPStatus(), r.Summary())
	}
}

func TestPoolWithoutKeysFails(t *testing.T) {
	c := New(map[string]KeySource{"main": fixedKeys{Keys: 2, FetchedAt: time.Now()}, "staff": fixedKeys{}}, nil)
	r := c.Check(context.Background())
	if r.Status != "unavailable" || r.HTTPStatus() != http.StatusServiceUnavailable {
		t.Fatalf("status %q (%d), want unavailable (503)", r.Status, r.HTTPStatus())
	}
	if want := []string{"pool staff: no signing keys"}; !reflect.DeepEqual(r.Failing, want) {
		t.Fatalf("failing = %q, want %q", r.Failing, want)
	}
	if r.Pools["staff"].KeysFetchedAt != nil || r.Store != "unused" {
		t.Fatalf("report = %+v", r)
	}
	if s := r.Summary(); len(s) != 1 || s["status"] != "unavailable" {
		t.Fatalf("summary %v holds more than the status", s)
	}
}

func TestStoreNotAnsweringFails(t *testing.T) {
	c := New(map[string]KeySource{"main": fixedKeys{Keys: 1}}, func(ctx context.Context) (bool, error) {
		if _, ok := ctx.Deadline(); !ok {
			t.Error("store check without a deadline")
		}
		return true, errors.New("database is locked")
	})
	r := c.Check(context.Background())
	if r.Status != "unavailable" || r.Store != "unavailable" || len(r.Failing) != 1 || r.Failing[0] != "store: not answering" ||
		r.StoreError != "database is locked" {
		t.Fatalf("report = %+v", r)
	}
	// A site shows no error text of the store's (hosts, users, paths).
	if site := r.WithoutErrors(); site.StoreError != "" || site.Failing[0] != "store: not answering" {
		t.Fatalf("site report = %+v", site)
	}
}
