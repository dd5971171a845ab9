package integration

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-cognito/caddy-cognito/integration/internal/caddyproc"
	"github.com/caddy-cognito/caddy-cognito/integration/internal/cognitolocal"
)

// forward-auth for other proxies (issue 13, item 6): cognito_login's
// /auth/verify answers a second Caddy's forward_auth and nginx's
// auth_request, each in front of the echo upstream, with the sign-in
// endpoints reached through the same front.

// verifySiteCaddyfile is the Caddy with the plugin: it trusts the fronts
// (loopback) for X-Forwarded-*, and serves only sign-in and verify.
const verifySiteCaddyfile = `{
	admin {$CADDY_ADMIN}
	auto_https off
	servers {
		trusted_proxies static 127.0.0.1/32
	}
	cognito {
		store sqlite @DB@
		pool main {
			issuer @ISSUER@
			client_id @CLIENT_ID@
			client_secret @CLIENT_SECRET@
			domain @DOMAIN@
		}
	}
}

http://127.0.0.1:@PORT@ {
	cognito_login {
		secret @SECRET@
		admit any
	}
	respond "the sign-in site itself" 404
}
`

// frontCaddyfile is Caddy's forward_auth in front of the upstream, as the
// README shows it.
const frontCaddyfile = `{
	admin {$CADDY_ADMIN}
	auto_https off
}

http://127.0.0.1:%d {
	handle /auth/* {
		reverse_proxy 127.0.0.1:%d
	}
	handle {
		forward_auth 127.0.0.1:%d {
			uri /auth/verify
			copy_headers X-Auth-User X-Auth-Sub X-Auth-Username X-Auth-Email X-Auth-Groups X-Auth-Scopes X-Auth-Client-Id X-Auth-Pool X-Auth-Roles
		}
		reverse_proxy %s
	}
}
`

// nginxConf is nginx's auth_request in front of the upstream, as the
// README shows it (with the paths of a private, unprivileged instance).
const nginxConf = `daemon off;
master_process off;
pid @DIR@/nginx.pid;
error_log stderr notice;
events { worker_connections 64; }
http {
	access_log off;
	absolute_redirect off;
	client_body_temp_path @DIR@/body;
	proxy_temp_path @DIR@/proxy;
	fastcgi_temp_path @DIR@/fastcgi;
	uwsgi_temp_path @DIR@/uwsgi;
	scgi_temp_path @DIR@/scgi;
	server {
		listen 127.0.0.1:@NGINX_PORT@;
		location /auth/ {
			proxy_pass http://127.0.0.1:@PLUGIN_PORT@;
			proxy_set_header Host $http_host;
			proxy_set_header X-Forwarded-Host $http_host;
			proxy_set_header X-Forwarded-Proto $scheme;
		}
		location = /_cognito_verify {
			internal;
			proxy_pass http://127.0.0.1:@PLUGIN_PORT@/auth/verify?unauthenticated=status;
			proxy_pass_request_body off;
			proxy_set_header Content-Length "";
			proxy_set_header Host $http_host;
			proxy_set_header X-Original-URI $request_uri;
			proxy_set_header X-Forwarded-Uri $request_uri; # replaces a client-sent one
			proxy_set_header X-Forwarded-Method $request_method;
			proxy_set_header X-Forwarded-Host $http_host;
			proxy_set_header X-Forwarded-Proto $scheme;
		}
		location / {
			auth_request /_cognito_verify;
			auth_request_set $auth_user $upstream_http_x_auth_user;
			auth_request_set $auth_sub $upstream_http_x_auth_sub;
			auth_request_set $auth_username $upstream_http_x_auth_username;
			auth_request_set $auth_email $upstream_http_x_auth_email;
			auth_request_set $auth_groups $upstream_http_x_auth_groups;
			auth_request_set $auth_scopes $upstream_http_x_auth_scopes;
			auth_request_set $auth_client $upstream_http_x_auth_client_id;
			auth_request_set $auth_pool $upstream_http_x_auth_pool;
			auth_request_set $auth_roles $upstream_http_x_auth_roles;
			auth_request_set $login_url $upstream_http_x_login_url;
			# Every identity header is set (an empty value sends none), so
			# a client's own X-Auth-* never reaches the upstream.
			proxy_set_header X-Auth-User $auth_user;
			proxy_set_header X-Auth-Sub $auth_sub;
			proxy_set_header X-Auth-Username $auth_username;
			proxy_set_header X-Auth-Email $auth_email;
			proxy_set_header X-Auth-Groups $auth_groups;
			proxy_set_header X-Auth-Scopes $auth_scopes;
			proxy_set_header X-Auth-Client-Id $auth_client;
			proxy_set_header X-Auth-Pool $auth_pool;
			proxy_set_header X-Auth-Roles $auth_roles;
			error_page 401 = @sign_in;
			proxy_pass @UPSTREAM@;
		}
		location @sign_in {
			return 302 $login_url;
		}
	}
}
`

// TestForwardAuthCaddyAndNginx: with no session, Caddy's forward_auth
// and nginx's auth_request send a navigation to /auth/login with next =
// the original URI (nginx through error_page 401), an API call gets 401
// from Caddy; a sign-in through each front's /auth/ ends back at the
// original URI, and then the signed-in cookie reaches the upstream with
// the identity headers (client-sent X-Auth-* replaced or removed).
func TestForwardAuthCaddyAndNginx(t *testing.T) {
	s := getStack(t)
	cognitolocal.RequirePatched(t)
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		nginx = "/usr/sbin/nginx"
	}
	if _, err := os.Stat(nginx); err != nil {
		cognitolocal.Missing(t, "nginx is not installed (scripts/install-test-deps.sh installs it)")
	}
	var ports [3]int
	for i := range ports {
		if ports[i], err = cognitolocal.FreePort(); err != nil {
			t.Fatal(err)
		}
	}
	pluginPort, frontPort, nginxPort := ports[0], ports[1], ports[2]
	frontBase, nginxBase := fmt.Sprintf("http://127.0.0.1:%d", frontPort), fmt.Sprintf("http://127.0.0.1:%d", nginxPort)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	client, err := s.cl.CreateUserPoolClient(ctx, s.pool.ID, "fwd-"+randomHex(t, 4), cognitolocal.ClientOptions{
		GenerateSecret:    true,
		CallbackURLs:      []string{frontBase + "/auth/callback", nginxBase + "/auth/callback"},
		LogoutURLs:        []string{frontBase + "/auth/logout/done", nginxBase + "/auth/logout/done"},
		AllowedOAuthFlows: []string{"code"},
		OAuthScopes:       []string{"openid", "email", "profile"},
	})
	if err != nil {
		t.Fatal(err)
	}
	ls := newLoginSite(t, s, pluginPort, verifySiteCaddyfile, map[string]string{
		"@ISSUER@": s.issuer, "@CLIENT_ID@": client.ClientID, "@CLIENT_SECRET@": client.ClientSecret, "@DOMAIN@": s.cl.URL,
	})
	front, err := caddyproc.Start(ctx, ls.bin, t.TempDir(), fmt.Sprintf(frontCaddyfile, frontPort, pluginPort, pluginPort, s.upstream.URL))
	if err != nil {
		t.Fatalf("starting the front caddy: %v", err)
	}
	t.Cleanup(front.Stop)
	startNginx(t, nginx, nginxPort, pluginPort, s.upstream.URL)

	email := uniqueEmail(t, "fern", "example.com")
	fern := cognitoUser(t, s, email, []string{"readers"}, nil)
	for _, fr := range []struct{ name, base string }{{"caddy forward_auth", frontBase}, {"nginx auth_request", nginxBase}} {
		t.Run(fr.name, func(t *testing.T) {
			c := newWebClient(t)
			target := "/app/" + randomHex(t, 3)
			r := c.navigate(fr.base+target, "X-Auth-User", "spoofed")
			wantSignInAt(t, fr.base, r, "/auth/login", target, fr.name+", no session")
			if fr.base == frontBase {
				wantUnauthenticatedAt(t, c.api(http.MethodGet, fr.base+target+"/data", nil), "/auth/login", target+"/data", fr.name+", API call")
			}
			if n := s.hitCount(target); n != 0 {
				t.Fatalf("the upstream got %d requests for %s without a session", n, target)
			}
			// Sign in through the front: its /auth/ reaches the plugin.
			start := c.navigate(fr.base + location(t, r).String())
			if start.Status != http.StatusFound {
				t.Fatalf("%s/auth/login: %s", fr.base, start)
			}
			authorize := location(t, start)
			if got := authorize.Query().Get("redirect_uri"); got != fr.base+"/auth/callback" {
				t.Fatalf("redirect_uri %q; want the front's %s/auth/callback", got, fr.base)
			}
			cctx, ccancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer ccancel()
			cb, err := cognitolocal.HostedUISignIn(cctx, authorize.String(), email, password)
			if err != nil {
				t.Fatal(err)
			}
			plainSignIn{answer: c.navigate(cb.String())}.wantSignedIn(t, target)

			r = c.navigate(fr.base+target, "X-Auth-User", "spoofed", "X-Auth-Roles", "admin")
			if r.Upstream == nil {
				t.Fatalf("signed in, through %s: %s", fr.name, r)
			}
			h := r.Upstream.authHeaders()
			if one(t, h, "x-auth-sub") != fern.Sub || one(t, h, "x-auth-pool") != "main" || one(t, h, "x-auth-username") == "" ||
				!strings.HasPrefix(one(t, h, "x-auth-user"), "u_") || one(t, h, "x-auth-email") != email {
				t.Errorf("%s: upstream identity %v; want fern (sub %s) of pool main", fr.name, h, fern.Sub)
			}
			if got := decodeList(t, one(t, h, "x-auth-groups")); len(got) != 1 || got[0] != "readers" {
				t.Errorf("%s: X-Auth-Groups %v; want [readers]", fr.name, got)
			}
			if v, ok := h["x-auth-roles"]; ok {
				t.Errorf("%s: the client's X-Auth-Roles reached the upstream: %v", fr.name, v)
			}
		})
	}

	// An absolute X-Forwarded-Uri of a foreign origin, even from a trusted
	// proxy (the test's loopback peer is one), never becomes next: the
	// return policy refuses it. (Untrusted peers: TestVerifyEndpoint.)
	r := newWebClient(t).navigate(ls.base+"/auth/verify", "X-Forwarded-Uri", "https://evil.example/steal")
	if loc := location(t, r); r.Status != http.StatusFound || loc.Query().Get("next") != "/" {
		t.Errorf("verify with a foreign X-Forwarded-Uri: %s to %s; want next=/", r, loc)
	}
}

// startNginx runs nginx (unprivileged style: its own prefix, config, pid
// and temp paths in a test directory, one process, no daemon) on port,
// and waits until it answers.
func startNginx(t *testing.T, bin string, port, pluginPort int, upstream string) {
	t.Helper()
	dir := t.TempDir()
	conf := strings.NewReplacer("@DIR@", dir, "@NGINX_PORT@", fmt.Sprint(port), "@PLUGIN_PORT@", fmt.Sprint(pluginPort),
		"@UPSTREAM@", upstream).Replace(nginxConf)
	file := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	var out lockedBuffer
	cmd := exec.Command(bin, "-p", dir, "-c", file) //nolint:gosec // G204: the test's own nginx binary and config
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting nginx: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }() // its exit is seen through done
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // the test's own process, by its pid
		<-done
		if t.Failed() {
			t.Logf("nginx printed:\n%s", out.String())
		}
	})
	pollUntil(t, 20*time.Second, "nginx answers on "+fmt.Sprint(port), func() bool {
		select {
		case <-done:
			t.Fatalf("nginx exited:\n%s", out.String())
		default:
		}
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/auth/me", port)) //nolint:noctx // a poll on loopback
		if err != nil {
			return false
		}
		_ = resp.Body.Close() // read-only
		return true
	})
}

// lockedBuffer collects a process's output while it runs.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
