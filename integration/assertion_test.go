package integration

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/caddy-cognito/caddy-cognito/integration/internal/caddyproc"
	"github.com/caddy-cognito/caddy-cognito/integration/internal/cognitolocal"
	"github.com/caddy-cognito/caddy-cognito/integration/internal/procgroup"
)

// assertionCaddyfile is a bearer-protected site that signs assertions
// with the given key files and publishes their JWKS.
func assertionCaddyfile(keys ...string) string {
	return fmt.Sprintf(`{
	admin {$CADDY_ADMIN}
	auto_https off
	cognito {
		assertion {
			key %s
			lifetime 30s
		}
		pool main {
			issuer {$ISSUER}
			client_id {$WEB_CLIENT}
			leeway 5s
		}
	}
}

http://127.0.0.1:{$SITE_PORT} {
	cognito_assertion_keys /.well-known/cognito-assertion-keys.json
	cognito_bearer {
		assertion
	}
	reverse_proxy {$UPSTREAM}
}
`, strings.Join(keys, " "))
}

// verdict is what testenv/assertion-verifier.mjs (jose) answers.
type verdict struct {
	OK       bool           `json:"ok"`
	Code     string         `json:"code"`
	Message  string         `json:"message"`
	Kid      string         `json:"kid"`
	Payload  map[string]any `json:"payload"`
	Received []string       `json:"received"`
	User     string         `json:"user"`
	status   int
	verified bool // the answer came from the verifier (X-Verifier: jose)
}

// TestAssertionVerifiedByJose: an upstream that verifies X-Auth-Assertion
// with npm's jose against the JWKS the site publishes accepts every
// request, also while the key rotates (reload from key A to `key B A`),
// and refuses a token for another audience, an expired one and one of a
// key since removed; a client-sent assertion never reaches it.
func TestAssertionVerifiedByJose(t *testing.T) {
	s := getStack(t)
	sitePort, err := cognitolocal.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	upPort, err := cognitolocal.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	site := fmt.Sprintf("http://127.0.0.1:%d", sitePort)
	upstream := fmt.Sprintf("http://127.0.0.1:%d", upPort)
	startVerifier(t, upstream+"/__ready", fmt.Sprintf("PORT=%d", upPort),
		"JWKS_URL="+site+"/.well-known/cognito-assertion-keys.json", "ISSUER="+site, fmt.Sprintf("AUDIENCE=127.0.0.1:%d", sitePort))

	dir := t.TempDir()
	keyA, keyB := writeECKey(t, dir, "a.pem"), writeECKey(t, dir, "b.pem")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := caddyproc.Start(ctx, needCaddy(t), tmpDir, assertionCaddyfile(keyA),
		"ISSUER="+s.issuer, "WEB_CLIENT="+s.web.ClientID, fmt.Sprintf("SITE_PORT=%d", sitePort), "UPSTREAM="+upstream)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("caddy output:\n%s", c.Output())
		}
		c.Stop()
	})

	aliceTok := s.login(t, s.web.ClientID, alice).AccessToken
	bobTok := s.login(t, s.web.ClientID, bob).AccessToken
	get := func(t *testing.T, token string, hdr ...string) verdict {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, site+"/app", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header[hdr[i]] = append(req.Header[hdr[i]], hdr[i+1]) // exact name, as sent
		}
		return askVerifier(t, req)
	}
	check := func(t *testing.T, token string, opts map[string]any) verdict {
		t.Helper()
		opts["token"] = token
		body, _ := json.Marshal(opts)
		req, _ := http.NewRequest(http.MethodPost, upstream+"/__verify", bytes.NewReader(body))
		return askVerifier(t, req)
	}
	kids := func(t *testing.T) []string {
		t.Helper()
		var set struct {
			Keys []struct {
				Kid string `json:"kid"`
				D   string `json:"d"`
			} `json:"keys"`
		}
		resp, err := http.Get(site + "/.well-known/cognito-assertion-keys.json")
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }() // read-only
		if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, k := range set.Keys {
			if k.D != "" {
				t.Fatal("the published set holds a private key")
			}
			out = append(out, k.Kid)
		}
		return out
	}
	reload := func(t *testing.T, caddyfile string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.Load(ctx, caddyfile); err != nil {
			t.Fatal(err)
		}
	}

	kidA := kids(t)
	if len(kidA) != 1 {
		t.Fatalf("published kids %v; want one", kidA)
	}
	first := get(t, aliceTok)
	if !first.verified || !first.OK {
		t.Fatalf("jose refuses the assertion: %+v", first)
	}
	aliceAssertion := first.Received[0]
	p := first.Payload
	if p["sub"] != s.users[alice].Sub || p["sub"] != first.User || p["username"] != s.users[alice].Username || p["pool"] != "main" ||
		p["iss"] != site || p["aud"] != fmt.Sprintf("127.0.0.1:%d", sitePort) || first.Kid != kidA[0] {
		t.Errorf("payload %v, kid %q; want alice's sub (= X-Auth-User %q), username, pool main, iss %s, aud the host, kid %s",
			p, first.Kid, first.User, site, kidA[0])
	}
	if groups := fmt.Sprint(p["groups"]); !strings.Contains(groups, "Straße,ops") {
		t.Errorf("groups %s; want the raw group names", groups)
	}
	iat, _ := p["iat"].(float64)
	exp, _ := p["exp"].(float64)
	if exp-iat != 30 {
		t.Errorf("exp - iat = %v; want the configured 30s", exp-iat)
	}

	t.Run("spoofed client assertion never reaches the upstream", func(t *testing.T) {
		bobs := get(t, bobTok)
		if !bobs.OK {
			t.Fatalf("bob: %+v", bobs)
		}
		bobAssertion := bobs.Received[0]
		v := get(t, aliceTok, "X-Auth-Assertion", bobAssertion, "x_auth_assertion", bobAssertion, "X-AUTH-ASSERTION", "forged.x.y")
		if !v.OK || len(v.Received) != 1 || v.Payload["sub"] != s.users[alice].Sub {
			t.Errorf("with spoofed assertions the upstream got %q: %+v", v.Received, v)
		}
		if v := get(t, "", "X-Auth-Assertion", bobAssertion); v.verified {
			t.Errorf("without a token, a client-sent assertion reached the upstream: %+v", v)
		} else if v.status != 401 {
			t.Errorf("without a token: HTTP %d", v.status)
		}
	})

	t.Run("wrong audience and expired are refused", func(t *testing.T) {
		if v := check(t, aliceAssertion, map[string]any{"audience": "other.example.com"}); v.OK || v.Code != "ERR_JWT_CLAIM_VALIDATION_FAILED" {
			t.Errorf("another audience: %+v", v)
		}
		if v := check(t, aliceAssertion, map[string]any{"currentDate": exp - 1}); !v.OK {
			t.Errorf("a second before exp: %+v", v)
		}
		if v := check(t, aliceAssertion, map[string]any{"currentDate": exp + 1}); v.OK || v.Code != "ERR_JWT_EXPIRED" {
			t.Errorf("after exp: %+v", v)
		}
		if v := check(t, aliceAssertion[:len(aliceAssertion)-4]+"AAAA", map[string]any{}); v.OK {
			t.Errorf("a tampered signature: %+v", v)
		}
	})

	t.Run("rotation: no request fails, then the removed key is refused", func(t *testing.T) {
		var mu sync.Mutex
		var failures []string
		seen := map[string]int{}
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				select {
				case <-stop:
					return
				default:
				}
				v, err := tryVerifier(aliceTok, site+"/app")
				mu.Lock()
				switch {
				case err != nil:
					failures = append(failures, err.Error())
				case !v.OK:
					failures = append(failures, fmt.Sprintf("HTTP %d %+v", v.status, v))
				default:
					seen[v.Kid]++
				}
				mu.Unlock()
				select { // a steady stream, not a flood of the shared machine
				case <-stop:
					return
				case <-time.After(5 * time.Millisecond):
				}
			}
		}()
		// waitSeen waits until n more verified requests were signed with kid.
		waitSeen := func(kid string, n int) {
			mu.Lock()
			want := seen[kid] + n
			mu.Unlock()
			deadline := time.Now().Add(30 * time.Second)
			for {
				mu.Lock()
				got := seen[kid]
				mu.Unlock()
				if got >= want {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("only %d of %d requests were signed with %s within 30s", got, want, kid)
				}
				time.Sleep(20 * time.Millisecond) // polling the counter the hammer fills
			}
		}
		waitSeen(kidA[0], 10)
		reload(t, assertionCaddyfile(keyB, keyA))
		during := kids(t)
		if len(during) != 2 || during[1] != kidA[0] {
			t.Fatalf("after `key B A` the kids are %v; want B's, then A's %s", during, kidA[0])
		}
		waitSeen(during[0], 10)
		reload(t, assertionCaddyfile(keyB))
		if after := kids(t); len(after) != 1 || after[0] != during[0] {
			t.Fatalf("after `key B` the kids are %v; want only %s", after, during[0])
		}
		waitSeen(during[0], 10)
		close(stop)
		<-done
		mu.Lock()
		defer mu.Unlock()
		if len(failures) > 0 {
			t.Errorf("%d requests failed during the rotation, e.g. %s", len(failures), failures[0])
		}
		t.Logf("verified during the rotation: %v", seen)

		if v := check(t, aliceAssertion, map[string]any{"fresh": true}); v.OK || v.Code != "ERR_JWKS_NO_MATCHING_KEY" {
			t.Errorf("a token of the removed key A: %+v", v)
		}
		if v := get(t, aliceTok); !v.OK || v.Kid != during[0] {
			t.Errorf("after the rotation: %+v", v)
		}
	})
}

// startVerifier runs testenv/assertion-verifier.mjs with env until the
// test ends, once readyURL answers.
func startVerifier(t *testing.T, readyURL string, env ...string) {
	t.Helper()
	node, testenv := cognitolocal.NodeAndTestenv(t)
	if _, err := os.Stat(filepath.Join(testenv, "node_modules", "jose", "package.json")); err != nil {
		cognitolocal.Missing(t, "jose is not installed in testenv/node_modules (npm ci in testenv/)")
	}
	out := cognitolocal.NewTailBuffer(16 << 10)
	cmd := exec.Command(node, filepath.Join(testenv, "assertion-verifier.mjs")) //nolint:gosec // G204: node running a script of testenv/
	cmd.Dir = testenv
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = out, out
	g, err := procgroup.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		g.Stop(syscall.SIGTERM, 5*time.Second)
		if t.Failed() {
			t.Logf("assertion-verifier.mjs printed:\n%s", out.String())
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cognitolocal.WaitHTTP(ctx, readyURL); err != nil {
		t.Fatalf("assertion-verifier.mjs not ready: %v\n%s", err, out.String())
	}
}

// askVerifier sends req and decodes the verifier's answer.
func askVerifier(t *testing.T, req *http.Request) verdict {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }() // read-only
	v := verdict{status: resp.StatusCode, verified: resp.Header.Get("X-Verifier") == "jose"}
	body, _ := io.ReadAll(resp.Body)
	if v.verified {
		if err := json.Unmarshal(body, &v); err != nil {
			t.Fatalf("verifier answered %q: %v", body, err)
		}
	}
	return v
}

// tryVerifier is askVerifier for a goroutine: errors instead of t.Fatal.
func tryVerifier(token, url string) (verdict, error) {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return verdict{}, err
	}
	defer func() { _ = resp.Body.Close() }() // read-only
	v := verdict{status: resp.StatusCode, verified: resp.Header.Get("X-Verifier") == "jose"}
	body, _ := io.ReadAll(resp.Body)
	if !v.verified {
		return v, fmt.Errorf("HTTP %d without the verifier: %s", resp.StatusCode, body)
	}
	return v, json.Unmarshal(body, &v)
}

// writeECKey writes a new P-256 key (SEC 1 PEM, 0600) into dir.
func writeECKey(t *testing.T, dir, name string) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalECPrivateKey(k)
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
