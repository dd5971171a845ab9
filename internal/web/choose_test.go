package web

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/caddy-cognito/caddy-cognito/internal/provider"
	"github.com/caddy-cognito/caddy-cognito/internal/seal"
	"github.com/caddy-cognito/caddy-cognito/internal/urlpolicy"
)

// presetProvider is a provider whose endpoints are known (nothing fetched).
func presetProvider(name, base string) *provider.Resolver {
	pp := provider.Pool{Name: name, Issuer: base, ClientID: name + "-client", ClientSecret: "s"}
	return provider.Preset(provider.NewClient(pp, provider.Endpoints{Authorize: base + "/oauth2/authorize", Token: base + "/oauth2/token"}, nil, nil))
}

// staffConfig is the sign-in config the tests start from: pool staff
// (endpoints preset), the default pages, a fresh sealer, no logs.
func staffConfig(t *testing.T) Config {
	t.Helper()
	sealer, err := seal.New([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	pages, err := LoadPages(nil)
	if err != nil {
		t.Fatal(err)
	}
	return Config{
		PathPrefix: "/auth/", Unauthenticated: "auto", ReturnTo: urlpolicy.ReturnPolicy{Default: "/"},
		Sealer: sealer, Provider: presetProvider("staff", "https://staff.example"), Pages: pages, Logger: zap.NewNop(),
	}
}

// twoPoolFlow is the sign-in of a handler offering pools staff and partners.
func twoPoolFlow(t *testing.T) *Flow {
	t.Helper()
	cfg := staffConfig(t)
	partners := presetProvider("partners", "https://partners.example")
	cfg.Choices = []Choice{{Name: "staff", Label: "Staff & admins", Provider: cfg.Provider}, {Name: "partners", Label: "Partners", Provider: partners}}
	cfg.TrustedProxy = func(*http.Request) bool { return false }
	return New(cfg)
}

func get(t *testing.T, f *Flow, target string) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "http://app.localhost"+target, nil)
	if err := f.Endpoint("login")(w, r); err != nil {
		t.Fatal(err)
	}
	return w
}

// TestChooserPage: /auth/login of a multi-pool handler shows one button
// per pool with its label (escaped), each keeping next, idp and invitation.
func TestChooserPage(t *testing.T) {
	f := twoPoolFlow(t)
	w := get(t, f, "/auth/login?next=%2Freports%3Fq%3D1&idp=Google")
	body := w.Body.String()
	if w.Code != http.StatusOK || w.Header().Get("Cache-Control") != "no-store" || len(w.Result().Cookies()) != 0 {
		t.Fatalf("chooser: %d %v, cookies %v", w.Code, w.Header(), w.Result().Cookies())
	}
	for _, want := range []string{
		`href="/auth/login?idp=Google&amp;next=%2Freports%3Fq%3D1&amp;pool=staff"`, "Staff &amp; admins",
		`href="/auth/login?idp=Google&amp;next=%2Freports%3Fq%3D1&amp;pool=partners"`, ">Partners<",
	} {
		if !strings.Contains(body, want) {
			t.Fatalf("chooser lacks %q:\n%s", want, body)
		}
	}
	// A refused next is replaced by the default before it reaches a button.
	if body := get(t, f, "/auth/login?next=https%3A%2F%2Fevil.example%2F").Body.String(); strings.Contains(body, "evil") {
		t.Fatalf("chooser kept a foreign next:\n%s", body)
	}
}

// TestChooserPoolParam: ?pool= skips the chooser and starts that pool's
// sign-in, remembered in the sealed login cookie; an unknown pool is a
// clear 400 page and no sign-in.
func TestChooserPoolParam(t *testing.T) {
	f := twoPoolFlow(t)
	w := get(t, f, "/auth/login?pool=partners&next=%2Fx")
	loc, _ := url.Parse(w.Header().Get("Location"))
	if w.Code != http.StatusFound || loc.Host != "partners.example" || loc.Query().Get("client_id") != "partners-client" {
		t.Fatalf("pool=partners: %d to %s", w.Code, loc)
	}
	cookies := w.Result().Cookies()
	if len(cookies) != 1 {
		t.Fatalf("cookies %v; want the one login cookie", cookies)
	}
	b, ok := f.openCookie(cookies[0].Value, adLoginCookie)
	var lr provider.LoginRequest
	if !ok || json.Unmarshal(b, &lr) != nil || lr.Pool != "partners" || lr.Next != "/x" || lr.State != loc.Query().Get("state") {
		t.Fatalf("login request %+v (opened %v)", lr, ok)
	}

	w = get(t, f, "/auth/login?pool=nobody&next=%2Fx")
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "no sign-in of that name") ||
		!strings.Contains(w.Body.String(), `href="/auth/login?next=%2Fx"`) || len(w.Result().Cookies()) != 0 {
		t.Fatalf("unknown pool: %d %v\n%s", w.Code, w.Result().Cookies(), w.Body)
	}
}

// TestCallbackKeepsPool: a callback whose login cookie is gone restarts
// with the pool it was for, so the user is not asked to choose again.
func TestCallbackKeepsPool(t *testing.T) {
	f := twoPoolFlow(t)
	w := httptest.NewRecorder()
	if err := f.restart(w, httptest.NewRequest(http.MethodGet, "http://app.localhost/auth/callback", nil), "/x", "partners", "st"); err != nil {
		t.Fatal(err)
	}
	if loc := w.Header().Get("Location"); w.Code != http.StatusFound || loc != "/auth/login?attempt=2&next=%2Fx&pool=partners" {
		t.Fatalf("restart: %d to %q", w.Code, loc)
	}
	w = httptest.NewRecorder()
	_ = f.restart(w, httptest.NewRequest(http.MethodGet, "http://app.localhost/auth/callback", nil), "/x", "gone", "st")
	if loc := w.Header().Get("Location"); loc != "/auth/login?attempt=2&next=%2Fx" {
		t.Fatalf("restart for a pool no longer offered: %q; want the chooser", loc)
	}
}
