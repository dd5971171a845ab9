package caddycognito

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddytest"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

// echoUpstream records the headers of the last request it served.
type echoUpstream struct {
	*httptest.Server
	mu      sync.Mutex
	last    http.Header
	trailer http.Header // of the last request, read after its body
	hits    int
}

func newEchoUpstream(t *testing.T) *echoUpstream {
	u := &echoUpstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		u.mu.Lock()
		u.last = r.Header.Clone()
		u.trailer = r.Trailer.Clone()
		u.hits++
		u.mu.Unlock()
		_, _ = fmt.Fprint(w, "upstream ok") // a write error is the client's problem
	}))
	t.Cleanup(u.Close)
	return u
}

// trailers returns the trailers of the last request the upstream got.
func (u *echoUpstream) trailers() http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.trailer
}

func (u *echoUpstream) seen() (http.Header, int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.last, u.hits
}

// startCaddy runs Caddy in-process with the plugin in front of upstream:
// cognitoExtra goes into the global cognito option, site into the site
// block before its reverse_proxy.
func startCaddy(t *testing.T, ti *testIssuer, upstream string, cognitoExtra, site string) *caddytest.Tester {
	tester := caddytest.NewTester(t)
	tester.InitServer(fmt.Sprintf(`
	{
		admin localhost:2999
		http_port 9080
		https_port 9443
		skip_install_trust
		cognito {
			%s
			pool main {
				issuer %s
				client_id other-client %s
			}
		}
	}
	http://localhost:9080 {
		%s
		reverse_proxy %s
	}`, cognitoExtra, ti.URL, ti.ClientID, site, strings.TrimPrefix(upstream, "http://")), "caddyfile")
	return tester
}

// reply is what a test keeps of an HTTP response once its body has been
// read and closed.
type reply struct {
	StatusCode int
	Header     http.Header
	Request    *http.Request // the last request sent, after redirects
}

// readReply reads resp's body; the caller closes it.
func readReply(resp *http.Response) (*reply, string) {
	body, _ := io.ReadAll(resp.Body)
	return &reply{StatusCode: resp.StatusCode, Header: resp.Header, Request: resp.Request}, string(body)
}

func do(t *testing.T, tester *caddytest.Tester, path string, hdr map[string][]string) (*reply, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://localhost:9080"+path, nil)
	for k, vs := range hdr {
		req.Header[k] = vs // raw: keep underscore names as sent
	}
	resp, err := tester.Client.Do(req)
	if errors.Is(err, io.EOF) {
		// The previous test's server, still closing on this port, took the
		// connection and closed it unanswered: a GET is safe to send again.
		resp, err = tester.Client.Do(req)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }() // read-only: nothing to flush
	return readReply(resp)
}

// reachUpstream sends a request that must pass to the echo upstream.
func reachUpstream(t *testing.T, tester *caddytest.Tester, path string, hdr map[string][]string) *reply {
	t.Helper()
	resp, body := do(t, tester, path, hdr)
	if resp.StatusCode != 200 || body != "upstream ok" {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
	return resp
}

func TestBearerInCaddy(t *testing.T) {
	ti := newTestIssuer(t)
	up := newEchoUpstream(t)
	tester := startCaddy(t, ti, up.URL, "", `
		cognito_bearer /reports/* {
			require scope reports/read
		}
		cognito_bearer
		header /whoami >X-Who "{http.auth.user.id}|{http.auth.user.username}|{http.auth.user.claim.custom:tenant}|{http.auth.user.claim.nope}"
	`)

	good := ti.Sign(ti.AccessClaims(map[string]any{"custom:tenant": "acme"}))

	t.Run("no token", func(t *testing.T) {
		resp, body := do(t, tester, "/", nil)
		if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != `Bearer realm="cognito"` {
			t.Fatalf("status %d, challenge %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
		var b map[string]string
		if err := json.Unmarshal([]byte(body), &b); err != nil || b["error"] != "unauthorized" {
			t.Fatalf("body %q", body)
		}
	})

	t.Run("valid token reaches upstream with identity, spoofed headers gone", func(t *testing.T) {
		resp := reachUpstream(t, tester, "/whoami", map[string][]string{
			"Authorization": {"Bearer " + good},
			"X-Auth-User":   {"admin"},
			"X_Auth_Roles":  {"superuser"},
			"x-auth-email":  {"ceo@example.com"},
			"Connection":    {"X-Auth-User, X-Auth-Groups"},
		})
		if got := resp.Header.Get("X-Who"); got != "5f1c2a3e-0000-4000-8000-000000000001|alice|acme|" {
			t.Errorf("placeholders gave %q", got)
		}
		h, _ := up.seen()
		want := map[string]string{
			"X-Auth-User":      "5f1c2a3e-0000-4000-8000-000000000001",
			"X-Auth-Sub":       "5f1c2a3e-0000-4000-8000-000000000001",
			"X-Auth-Username":  "alice",
			"X-Auth-Groups":    "admins,staff",
			"X-Auth-Scopes":    "openid,email,profile",
			"X-Auth-Client-Id": ti.ClientID,
			"X-Auth-Pool":      "main",
		}
		for k, v := range want {
			if got := h.Values(k); len(got) != 1 || got[0] != v {
				t.Errorf("upstream %s = %q; want [%q]", k, got, v)
			}
		}
		for name := range h {
			n := strings.ToLower(strings.ReplaceAll(name, "_", "-"))
			if n == "x-auth-roles" || n == "x-auth-email" {
				t.Errorf("spoofed header %s reached upstream: %q", name, h[name])
			}
		}
	})

	t.Run("bad tokens", func(t *testing.T) {
		for name, tok := range map[string]string{
			"expired":      ti.Sign(ti.AccessClaims(map[string]any{"exp": 1000, "iat": 900})),
			"id token":     ti.Sign(ti.IDClaims(nil)),
			"tampered":     good[:len(good)-4] + "AAAA",
			"garbage":      "not-a-jwt",
			"wrong client": ti.Sign(ti.AccessClaims(map[string]any{"client_id": "evil"})),
		} {
			_, hitsBefore := up.seen()
			resp, body := do(t, tester, "/", map[string][]string{"Authorization": {"Bearer " + tok}})
			if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
				t.Errorf("%s: status %d challenge %q", name, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
			}
			if strings.Contains(body, tok) || !strings.Contains(body, `"invalid_token"`) {
				t.Errorf("%s: body %q", name, body)
			}
			if _, hits := up.seen(); hits != hitsBefore {
				t.Errorf("%s: reached the upstream", name)
			}
		}
	})

	t.Run("malformed Authorization", func(t *testing.T) {
		for name, vals := range map[string][]string{
			"two headers":  {"Bearer " + good, "Bearer " + good},
			"empty bearer": {"Bearer "},
		} {
			resp, body := do(t, tester, "/", map[string][]string{"Authorization": vals})
			if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_request"`) || !strings.Contains(body, "invalid_request") {
				t.Errorf("%s: status %d challenge %q body %q", name, resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
			}
		}
		// Another scheme is no bearer token at all: a plain challenge.
		resp, _ := do(t, tester, "/", map[string][]string{"Authorization": {"Basic YWxpY2U6cHc="}})
		if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != `Bearer realm="cognito"` {
			t.Errorf("Basic credentials: status %d challenge %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	})

	t.Run("scope required", func(t *testing.T) {
		resp, body := do(t, tester, "/reports/q1", map[string][]string{"Authorization": {"Bearer " + good}})
		if resp.StatusCode != 403 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="insufficient_scope"`) ||
			!strings.Contains(resp.Header.Get("WWW-Authenticate"), `scope="reports/read"`) || !strings.Contains(body, "insufficient_scope") {
			t.Fatalf("status %d challenge %q body %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
		}
		withScope := ti.Sign(ti.AccessClaims(map[string]any{"scope": "reports/read"}))
		if resp, _ := do(t, tester, "/reports/q1", map[string][]string{"Authorization": {"Bearer " + withScope}}); resp.StatusCode != 200 {
			t.Fatalf("with scope: status %d", resp.StatusCode)
		}
	})

	t.Run("keys fetched once", func(t *testing.T) {
		if n := ti.Requests(); n != 1 {
			t.Fatalf("JWKS fetched %d times; want 1", n)
		}
	})
}

// TestBearerIdentityHeadersInCaddy: with identity_headers only the named
// headers reach the upstream; the placeholders keep the whole identity,
// and client-sent headers under the prefix are still removed, sent or not.
func TestBearerIdentityHeadersInCaddy(t *testing.T) {
	ti := newTestIssuer(t)
	up := newEchoUpstream(t)
	tester := startCaddy(t, ti, up.URL, "", `
		cognito_bearer {
			identity_headers user groups
		}
		header >X-Who "{http.auth.user.username}|{http.auth.user.pool}"
	`)
	resp := reachUpstream(t, tester, "/", map[string][]string{
		"Authorization": {"Bearer " + ti.Sign(ti.AccessClaims(nil))},
		"X-Auth-Pool":   {"spoofed"},
		"X_Auth_User":   {"spoofed"},
	})
	if got := resp.Header.Get("X-Who"); got != "alice|main" {
		t.Errorf("placeholders gave %q", got)
	}
	h, _ := up.seen()
	var sent []string
	for name := range h {
		if strings.HasPrefix(strings.ToLower(strings.ReplaceAll(name, "_", "-")), "x-auth-") {
			sent = append(sent, name+"="+strings.Join(h[name], ";"))
		}
	}
	slices.Sort(sent)
	want := []string{"X-Auth-Groups=admins,staff", "X-Auth-User=5f1c2a3e-0000-4000-8000-000000000001"}
	if !slices.Equal(sent, want) {
		t.Errorf("upstream identity headers %q; want %q", sent, want)
	}
}

func TestBearerHandleErrors(t *testing.T) {
	ti := newTestIssuer(t)
	up := newEchoUpstream(t)
	tester := startCaddy(t, ti, up.URL, "", `
		cognito_bearer {
			cookie session_token
			token_use id
		}
		handle_errors {
			respond "custom {http.error.status_code} {http.auth.cognito.error}: {http.auth.cognito.error_description}"
		}
	`)

	resp, body := do(t, tester, "/", map[string][]string{"Authorization": {"Bearer x.y.z"}})
	if resp.StatusCode != 401 || body != "custom 401 invalid_token: malformed token" {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
	if !strings.Contains(resp.Header.Get("WWW-Authenticate"), "invalid_token") {
		t.Errorf("challenge lost in handle_errors: %q", resp.Header.Get("WWW-Authenticate"))
	}
	// The ID token from a cookie is accepted; the header wins over it.
	id := ti.Sign(ti.IDClaims(nil))
	if resp, _ := do(t, tester, "/", map[string][]string{"Cookie": {"session_token=" + id}}); resp.StatusCode != 200 {
		t.Fatalf("cookie token: status %d", resp.StatusCode)
	}
	h, _ := up.seen()
	if h.Get("X-Auth-Email") != "alice@example.com" {
		t.Errorf("ID token email header = %q", h.Get("X-Auth-Email"))
	}
	if resp, _ := do(t, tester, "/", map[string][]string{"Cookie": {"session_token=" + id}, "Authorization": {"Bearer bad"}}); resp.StatusCode != 401 {
		t.Fatalf("header should win over cookie: status %d", resp.StatusCode)
	}
}

func TestBearerConfigErrors(t *testing.T) {
	ti := newTestIssuer(t)
	for name, tc := range map[string]struct{ global, site, want string }{
		"no client":    {global: "pool main {\n issuer " + ti.URL + "\n }", site: "cognito_bearer", want: "no client_id"},
		"unknown pool": {global: "pool main {\n issuer " + ti.URL + "\n client_id c\n }", site: "cognito_bearer {\n pool other\n }", want: `no pool named "other"`},
		"http issuer":  {global: "pool main {\n issuer http://example.com/p\n client_id c\n }", site: "cognito_bearer", want: "must use https"},
	} {
		t.Run(name, func(t *testing.T) {
			cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(fmt.Sprintf(`
			{
				admin off
				http_port 9080
				skip_install_trust
				cognito {
					%s
				}
			}
			http://localhost:9080 {
				%s
				respond ok
			}`, tc.global, tc.site)), nil)
			if err != nil {
				t.Fatal(err)
			}
			err = caddy.Load(cfg, true)
			if err == nil {
				_ = caddy.Stop()
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("load error = %v; want one containing %q", err, tc.want)
			}
		})
	}
}
