package integration

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/caddy-cognito/caddy-cognito/integration/internal/cognitolocal"
)

// A browser-like net/http client for cognito_login's endpoints, and a
// sign-in through cognito-local's hosted UI with it.

// webClient is a browser-like HTTP client: a cookie jar, no automatic
// redirects (each hop is checked), and the request headers a browser sends.
type webClient struct {
	t   *testing.T
	jar *cookiejar.Jar
	hc  *http.Client
}

func newWebClient(t *testing.T) *webClient {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &webClient{t: t, jar: jar, hc: &http.Client{
		Jar:           jar,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		// The https test's site has a certificate from Caddy's internal CA.
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, //nolint:gosec // G402: a test client of Caddy's local CA on loopback
	}}
}

// do sends req; hdr are extra headers by exact name (not canonicalized).
func (c *webClient) do(req *http.Request, hdr ...string) result {
	c.t.Helper()
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header[hdr[i]] = append(req.Header[hdr[i]], hdr[i+1])
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer func() { _ = resp.Body.Close() }() // read-only
	body, _ := io.ReadAll(resp.Body)
	r := result{Status: resp.StatusCode, Header: resp.Header, Body: body}
	if resp.Header.Get("X-Echo") == "1" {
		r.Upstream = new(echoed)
		if err := json.Unmarshal(body, r.Upstream); err != nil {
			c.t.Fatalf("upstream answer %q: %v", body, err)
		}
	}
	return r
}

// navigate is a browser's top-level GET.
func (c *webClient) navigate(u string, hdr ...string) result {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	req.Header.Set("Sec-Fetch-Mode", "navigate")
	req.Header.Set("Sec-Fetch-Dest", "document")
	req.Header.Set("User-Agent", "Mozilla/5.0 (caddy-cognito integration test)")
	return c.do(req, hdr...)
}

// api is a script's fetch asking for JSON.
func (c *webClient) api(method, u string, body io.Reader, hdr ...string) result {
	c.t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Sec-Fetch-Mode", "cors")
	return c.do(req, hdr...)
}

// postForm is a browser submitting a form.
func (c *webClient) postForm(u string, form url.Values, hdr ...string) result {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "text/html")
	req.Header.Set("Sec-Fetch-Mode", "navigate")
	return c.do(req, hdr...)
}

func (c *webClient) setCookie(base, name, value string) {
	u, _ := url.Parse(base + "/")
	c.jar.SetCookies(u, []*http.Cookie{{Name: name, Value: value, Path: "/"}}) //nolint:gosec // G124: a cookie planted in the test client's jar, not one a server sets
}

func (c *webClient) cookie(base, name string) string {
	u, _ := url.Parse(base + "/")
	for _, ck := range c.jar.Cookies(u) {
		if ck.Name == name {
			return ck.Value
		}
	}
	return ""
}

// cookies returns the cookies the jar would send to base.
func (c *webClient) cookies(base string) []*http.Cookie {
	u, _ := url.Parse(base + "/")
	return c.jar.Cookies(u)
}

func location(t *testing.T, r result) *url.URL {
	t.Helper()
	loc := r.Header.Get("Location")
	if loc == "" {
		t.Fatalf("want a redirect, got %s", r)
	}
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatalf("Location %q: %v", loc, err)
	}
	return u
}

// setCookie finds a Set-Cookie of the answer by name (nil when absent).
func setCookie(r result, name string) *http.Cookie {
	resp := http.Response{Header: r.Header}
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// startSignIn: GET <site>/auth/login?next=… must redirect (302) to the
// provider's authorize endpoint; it returns that URL.
func (ls *loginSite) startSignIn(t *testing.T, c *webClient, next string, hdr ...string) *url.URL {
	t.Helper()
	u := ls.base + "/auth/login"
	if next != "" {
		u += "?next=" + url.QueryEscape(next)
	}
	r := c.navigate(u, hdr...)
	if r.Status != http.StatusFound {
		t.Fatalf("GET %s: want 302 to the provider, got %s", u, r)
	}
	return location(t, r)
}

var (
	inputTag  = regexp.MustCompile(`(?is)<input\b[^>]*>`)
	attribute = regexp.MustCompile(`(?is)([a-z_:-]+)\s*=\s*"([^"]*)"`)
)

// hostedUI signs in as user at cognito-local's form at authorize and
// returns the callback URL it redirects to (code and state).
func (ls *loginSite) hostedUI(t *testing.T, authorize *url.URL, user string) *url.URL {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cb, err := cognitolocal.HostedUISignIn(ctx, authorize.String(), user, password)
	if err != nil {
		t.Fatalf("signing in at the hosted UI as %s: %v", user, err)
	}
	if cb.Query().Get("code") == "" || !strings.HasPrefix(cb.String(), ls.base+"/auth/callback?") {
		t.Fatalf("the hosted UI redirected to %s, want %s/auth/callback?code=…", cb, ls.base)
	}
	return cb
}

// plainSignIn is one sign-in through the hosted UI with net/http.
type plainSignIn struct {
	authorize *url.URL
	callback  *url.URL       // where the hosted UI sent the browser
	before    []*http.Cookie // the site's cookies just before the callback
	answer    result         // the callback's answer
}

func (ls *loginSite) signInPlain(t *testing.T, c *webClient, next, user string) plainSignIn {
	t.Helper()
	var p plainSignIn
	p.authorize = ls.startSignIn(t, c, next)
	p.callback = ls.hostedUI(t, p.authorize, user)
	p.before = c.cookies(ls.base)
	p.answer = c.navigate(p.callback.String())
	return p
}

// wantSignedIn: the callback answered 303 to want (a path on this site)
// and set a session cookie.
func (p plainSignIn) wantSignedIn(t *testing.T, want string) string {
	t.Helper()
	if p.answer.Status != http.StatusSeeOther {
		t.Fatalf("callback: want 303 after sign-in, got %s", p.answer)
	}
	if got := p.answer.Header.Get("Location"); got != want {
		t.Fatalf("callback redirected to %q, want %q", got, want)
	}
	sc := setCookie(p.answer, loginSessionName)
	if sc == nil || sc.Value == "" {
		t.Fatalf("callback set no %s cookie: %v", loginSessionName, p.answer.Header.Values("Set-Cookie"))
	}
	return sc.Value
}

// wantRestart: the callback refused and restarted sign-in (302 to
// /auth/login) without a session.
func wantRestart(t *testing.T, r result) *url.URL {
	t.Helper()
	if r.Status != http.StatusFound || r.Upstream != nil {
		t.Fatalf("want 302 back to /auth/login, got %s", r)
	}
	loc := location(t, r)
	if loc.Path != "/auth/login" || (loc.Host != "" && !strings.HasPrefix(loc.Host, "127.0.0.1:")) {
		t.Fatalf("want a restart at this site's /auth/login, got Location %s", loc)
	}
	if sc := setCookie(r, loginSessionName); sc != nil && sc.Value != "" && sc.MaxAge >= 0 {
		t.Fatalf("a refused callback set a session cookie: %v", sc)
	}
	return loc
}
