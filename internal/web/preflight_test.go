package web

import (
	"net/http/httptest"
	"testing"
)

func TestIsPreflight(t *testing.T) {
	for _, c := range []struct {
		method, acrm string
		want         bool
	}{
		{"OPTIONS", "PUT", true},
		{"OPTIONS", "", false}, // a plain OPTIONS is a request like any other
		{"GET", "PUT", false},
		{"POST", "POST", false},
	} {
		r := httptest.NewRequest(c.method, "/x", nil)
		if c.acrm != "" {
			r.Header.Set("Access-Control-Request-Method", c.acrm)
		}
		if got := IsPreflight(r); got != c.want {
			t.Errorf("%s with Access-Control-Request-Method %q: IsPreflight = %v, want %v", c.method, c.acrm, got, c.want)
		}
	}
}
