package integration

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-cognito/caddy-cognito/integration/internal/caddyproc"
	"github.com/caddy-cognito/caddy-cognito/integration/internal/cognitolocal"
	"github.com/caddy-cognito/caddy-cognito/internal/pgtest"
)

var (
	caddyBin string
	buildErr error
	tmpDir   string

	stackOnce sync.Once
	theStack  *stack
	stackErr  error
)

func TestMain(m *testing.M) {
	flag.Parse()
	var err error
	tmpDir, err = os.MkdirTemp("", "caddy-cognito-it-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	start := time.Now()
	caddyBin, buildErr = caddyproc.Build(ctx, tmpDir, nil)
	cancel()
	if buildErr == nil {
		fmt.Fprintf(os.Stderr, "integration: caddy with the plugin built by xcaddy (CGO_ENABLED=0) in %v: %s\n", time.Since(start).Round(time.Second), caddyBin)
	}
	code := m.Run()
	if code != 0 && theStack != nil && theStack.caddy != nil {
		out := theStack.caddy.Output()
		if len(out) > 8000 {
			out = "…" + out[len(out)-8000:]
		}
		fmt.Fprintf(os.Stderr, "integration: tests failed; caddy's last output:\n%s\n", out)
	}
	if theStack != nil {
		theStack.close()
	}
	pgtest.Stop()
	_ = os.RemoveAll(tmpDir) // a leftover temporary directory harms nothing
	os.Exit(code)
}

// needCaddy returns the built binary or fails the test.
func needCaddy(t *testing.T) string {
	t.Helper()
	if buildErr != nil {
		t.Fatalf("building caddy with the plugin failed: %v", buildErr)
	}
	return caddyBin
}

const (
	password = "Correct-Horse-9!"
	alice    = "alice@example.com" // in groups admins, staff and "Straße,ops"
	bob      = "bob@example.com"   // in no group
)

// stack is one cognito-local pool, an echo upstream and a Caddy in front of
// it, shared by the tests of this package.
type stack struct {
	cl       *cognitolocal.Server
	minter   *cognitolocal.Minter
	pool     cognitolocal.UserPool
	web      cognitolocal.AppClient // public client configured in Caddy
	machine  cognitolocal.AppClient // confidential client configured in Caddy
	stranger cognitolocal.AppClient // a client of the same pool, not configured in Caddy
	users    map[string]cognitolocal.User
	issuer   string
	upstream *httptest.Server
	caddy    *caddyproc.Caddy
	base     string   // http://127.0.0.1:<port>
	hits     sync.Map // request path → *atomic.Int64, every request the upstream got
}

// The Caddyfile under test. Routes:
//
//	/admins/*  require group admins
//	/scoped/*  require scope api/read
//	/id/*      token_use id
//	/cookie/*  token from cookie "session" too
//	anything else: access tokens, realm "test-api"
const testCaddyfile = `{
	admin {$CADDY_ADMIN}
	auto_https off
	cognito {
		pool main {
			issuer {$ISSUER}
			client_id {$WEB_CLIENT} {$MACHINE_CLIENT}
			leeway 5s
		}
	}
}

http://127.0.0.1:{$SITE_PORT} {
	handle /admins/* {
		cognito_bearer {
			require group admins
			realm test-api
		}
		reverse_proxy {$UPSTREAM}
	}
	handle /scoped/* {
		cognito_bearer {
			require scope api/read
			realm test-api
		}
		reverse_proxy {$UPSTREAM}
	}
	handle /id/* {
		cognito_bearer {
			token_use id
			realm test-api
		}
		reverse_proxy {$UPSTREAM}
	}
	handle /cookie/* {
		cognito_bearer {
			cookie session
			realm test-api
		}
		reverse_proxy {$UPSTREAM}
	}
	handle {
		cognito_bearer {
			realm test-api
		}
		reverse_proxy {$UPSTREAM}
	}
}
`

func getStack(t *testing.T) *stack {
	t.Helper()
	bin := needCaddy(t)
	if _, _, err := cognitolocal.NodePath(); err != nil {
		cognitolocal.Missing(t, "%v", err)
	}
	stackOnce.Do(func() { theStack, stackErr = newStack(bin) })
	if stackErr != nil {
		t.Fatalf("setting up cognito-local + caddy: %v", stackErr)
	}
	return theStack
}

func newStack(bin string) (*stack, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := &stack{}
	var err error
	if s.cl, err = cognitolocal.Start(ctx, cognitolocal.Options{}); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			s.close()
		}
	}()
	if s.minter, err = cognitolocal.LoadMinter(); err != nil {
		return nil, err
	}
	seeded, err := cognitolocal.Seed(ctx, s.cl.Client, cognitolocal.SeedSpec{
		PoolName: "integration", ClientName: "web",
		Users: []cognitolocal.SeedUser{
			{Email: alice, Password: password, Groups: []string{"admins", "staff", "Straße,ops"}, Attributes: map[string]string{"name": "Alice Ünïcode, \"Jr\""}},
			{Email: bob, Password: password},
		},
	})
	if err != nil {
		return nil, err
	}
	s.pool, s.web, s.users = seeded.Pool, seeded.Client, seeded.Users
	s.issuer = s.cl.Issuer(s.pool.ID)
	if s.machine, err = s.cl.CreateUserPoolClient(ctx, s.pool.ID, "machine", cognitolocal.ClientOptions{GenerateSecret: true}); err != nil {
		return nil, err
	}
	if s.stranger, err = s.cl.CreateUserPoolClient(ctx, s.pool.ID, "stranger", cognitolocal.ClientOptions{}); err != nil {
		return nil, err
	}
	s.upstream = httptest.NewServer(http.HandlerFunc(s.echo))
	port, err := cognitolocal.FreePort()
	if err != nil {
		return nil, err
	}
	s.base = fmt.Sprintf("http://127.0.0.1:%d", port)
	s.caddy, err = caddyproc.Start(ctx, bin, tmpDir, testCaddyfile,
		"ISSUER="+s.issuer, "WEB_CLIENT="+s.web.ClientID, "MACHINE_CLIENT="+s.machine.ClientID,
		fmt.Sprintf("SITE_PORT=%d", port), "UPSTREAM="+s.upstream.URL)
	if err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

func (s *stack) close() {
	if s.caddy != nil {
		s.caddy.Stop()
	}
	if s.upstream != nil {
		s.upstream.Close()
	}
	if s.cl != nil {
		if err := s.cl.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "cognito-local:", err)
		}
	}
}

// echoed is what the upstream answers: the request it received.
type echoed struct {
	Method  string              `json:"method"`
	Path    string              `json:"path"`
	Headers map[string][]string `json:"headers"`
	// Trailers are the request's trailers, known once the body is read.
	Trailers map[string][]string `json:"trailers,omitempty"`
}

func (s *stack) echo(w http.ResponseWriter, r *http.Request) {
	n, _ := s.hits.LoadOrStore(r.URL.Path, new(atomic.Int64))
	n.(*atomic.Int64).Add(1)
	_, _ = io.Copy(io.Discard, r.Body) // to the end: net/http fills in r.Trailer then
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Echo", "1")
	_ = json.NewEncoder(w).Encode(echoed{Method: r.Method, Path: r.URL.Path, Headers: r.Header, Trailers: r.Trailer}) // a write error is the client's problem
}

// hitCount is how many requests for path the upstream has received.
func (s *stack) hitCount(path string) int64 {
	if n, ok := s.hits.Load(path); ok {
		return n.(*atomic.Int64).Load()
	}
	return 0
}

// result is what a client saw.
type result struct {
	Status   int
	Header   http.Header
	Body     []byte
	Upstream *echoed // nil when the request never reached the upstream
}

func (r result) String() string {
	return fmt.Sprintf("HTTP %d %s %s", r.Status, r.Header.Get("Www-Authenticate"), r.Body)
}

// authHeaders returns the identity headers the upstream saw, keyed by their
// name lower-cased with '_' as '-' so that spoofed variants show up.
func (e *echoed) authHeaders() map[string][]string {
	out := map[string][]string{}
	for k, v := range e.Headers {
		n := strings.ReplaceAll(strings.ToLower(k), "_", "-")
		if strings.HasPrefix(n, "x-auth-") {
			out[n] = append(out[n], v...)
		}
	}
	for _, v := range out {
		sort.Strings(v)
	}
	return out
}

// do sends a request through Caddy. token "" sends no Authorization header.
func (s *stack) do(t *testing.T, path, token string, hdr ...string) result {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header[hdr[i]] = append(req.Header[hdr[i]], hdr[i+1]) // exact name, not canonicalized
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }() // read-only
	body, _ := io.ReadAll(resp.Body)
	r := result{Status: resp.StatusCode, Header: resp.Header, Body: body}
	if resp.Header.Get("X-Echo") == "1" {
		r.Upstream = new(echoed)
		if err := json.Unmarshal(body, r.Upstream); err != nil {
			t.Fatalf("upstream answer %q: %v", body, err)
		}
	}
	return r
}

func (s *stack) login(t *testing.T, clientID, user string) cognitolocal.Tokens {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tok, err := s.cl.InitiateAuth(ctx, clientID, user, password)
	if err != nil {
		t.Fatalf("InitiateAuth %s: %v", user, err)
	}
	return tok
}
