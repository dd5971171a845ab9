// Command signin signs a user in to a site protected by cognito_login,
// through cognito-local's hosted UI, with plain HTTP (no browser), and
// prints the session cookie it got:
//
//	signin -site http://127.0.0.1:8081 -user demo@example.com -password 'Demo-Passw0rd!'
//	COGNITO_SESSION_COOKIE=cognito_session=…
//
// It follows the sign-in a browser makes, one redirect at a time:
// GET {site}/auth/login?next=/ (which sets the login-state cookie and
// redirects to the hosted UI), the hosted UI's login form, and the
// callback on the site, which sets the session cookie. `curl -H "Cookie:
// $cookie"` (after `eval "$(signin …)"`, as COGNITO_SESSION_COOKIE) then
// reaches the site as that user. scripts/demo.sh and scripts/bench-wrk.sh
// use it. It exits 1, saying which step, when any step goes otherwise.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/caddy-cognito/caddy-cognito/integration/internal/cognitolocal"
)

func main() {
	site := flag.String("site", "http://localhost:8081", "base URL of the site with cognito_login")
	prefix := flag.String("prefix", "/auth/", "the handler's path_prefix")
	next := flag.String("next", "/", "where the site should send the browser after sign-in")
	user := flag.String("user", "demo@example.com", "the user's sign-in name")
	password := flag.String("password", "Demo-Passw0rd!", "the user's password")
	cookieName := flag.String("cookie", "cognito_session", "the session cookie's name (__Host-cognito_session on https)")
	timeout := flag.Duration("timeout", 30*time.Second, "how long the whole sign-in may take")
	flag.Parse()
	if flag.NArg() > 0 {
		fail("unexpected arguments %q", flag.Args())
	}

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	base, err := url.Parse(strings.TrimRight(*site, "/"))
	if err != nil || base.Scheme == "" || base.Host == "" {
		fail("-site %q is not an absolute URL", *site)
	}
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{
		Jar:           jar,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}

	// 1. The site starts the sign-in: a state cookie and a redirect to the hosted UI.
	loginURL := base.String() + *prefix + "login?next=" + url.QueryEscape(*next)
	authorize, err := redirect(ctx, hc, loginURL)
	if err != nil {
		fail("starting the sign-in: %v", err)
	}

	// 2. The hosted UI's login form answers with a redirect to the callback.
	callback, err := cognitolocal.HostedUISignIn(ctx, authorize.String(), *user, *password)
	if err != nil {
		fail("signing in at the hosted UI (%s): %v", authorize.Redacted(), err)
	}
	if callback.Scheme != base.Scheme || callback.Host != base.Host {
		fail("the hosted UI sent the browser to %s, not to the site %s", callback.Redacted(), base)
	}

	// 3. The site's callback checks it all, creates the session and sets its cookie.
	done, err := redirect(ctx, hc, callback.String())
	if err != nil {
		fail("finishing the sign-in at the callback: %v", err)
	}
	for _, c := range jar.Cookies(base) {
		if c.Name == *cookieName && c.Value != "" {
			fmt.Printf("COGNITO_SESSION_COOKIE=%s=%s\n", c.Name, c.Value)
			return
		}
	}
	fail("the callback redirected to %s, but set no %s cookie (a redirect to login means the site lost the sign-in state)", done, *cookieName)
}

// redirect GETs u and returns where it redirects to; anything but a
// redirect is an error showing the start of the page.
func redirect(ctx context.Context, hc *http.Client, u string) (*url.URL, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/html")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }() // read-only
	if resp.StatusCode < 300 || resp.StatusCode > 399 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 2000))
		return nil, fmt.Errorf("GET %s: HTTP %d, want a redirect: %s", u, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	loc, err := resp.Location()
	if err != nil {
		return nil, fmt.Errorf("GET %s: HTTP %d without a usable Location: %w", u, resp.StatusCode, err)
	}
	return loc, nil
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "signin: "+format+"\n", args...)
	os.Exit(1)
}
