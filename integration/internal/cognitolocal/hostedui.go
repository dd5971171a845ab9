package cognitolocal

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// cognito-local's hosted UI, as patched by testenv/patch-cognito-local.js
// (npm ci runs it): GET /oauth2/authorize renders a login form (hidden
// client_id, redirect_uri, response_type, code_challenge,
// code_challenge_method, scope, state, nonce; visible username, password)
// that POSTs to /oauth2/authorize, which redirects (302) to the callback with
// code and state. It sets no cookie: there is no hosted-UI session, so every
// sign-in shows the form. The patch adds the ID token's nonce claim,
// client authentication at /oauth2/token, GET /logout and POST /oauth2/revoke.

// Patched reports whether testenv's cognito-local carries the current
// patch (node testenv/patch-cognito-local.js --check); the error says why not.
func Patched() error {
	node, _, err := NodePath()
	if err != nil {
		return err
	}
	dir, err := TestenvDir()
	if err != nil {
		return err
	}
	out, err := exec.Command(node, filepath.Join(dir, "patch-cognito-local.js"), "--check").CombinedOutput() //nolint:gosec // G204: node running a script of testenv/
	if err != nil {
		return fmt.Errorf("cognitolocal: cognito-local is not patched: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// RequirePatched skips the test (fails it under CI=true) unless cognito-local
// is installed and patched, which tests of the hosted UI's nonce, /logout and
// /oauth2/revoke need.
func RequirePatched(t testing.TB) {
	t.Helper()
	if err := Patched(); err != nil {
		Missing(t, "%v", err)
	}
}

var (
	formAction  = regexp.MustCompile(`<form[^>]*action="([^"]*)"`)
	hiddenInput = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)" />`)
)

// HostedUISignIn signs in through cognito-local's hosted UI with plain HTTP:
// it loads authorizeURL (GET /oauth2/authorize?client_id=…&redirect_uri=…
// &response_type=code&code_challenge=…&code_challenge_method=S256[&state=…]
// [&nonce=…]), posts the login form with username and password, and returns
// the callback URL the form redirects to (carrying code and state). A wrong
// password, or any answer other than a redirect, is an error.
func HostedUISignIn(ctx context.Context, authorizeURL, username, password string) (*url.URL, error) {
	hc := &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, authorizeURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	page, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close() // read-only
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("cognitolocal: GET %s: HTTP %d: %s", authorizeURL, resp.StatusCode, page)
	}
	m := formAction.FindSubmatch(page)
	if m == nil {
		return nil, fmt.Errorf("cognitolocal: no login form at %s: %s", authorizeURL, page)
	}
	action, err := resp.Request.URL.Parse(html.UnescapeString(string(m[1])))
	if err != nil {
		return nil, err
	}
	form := url.Values{}
	for _, in := range hiddenInput.FindAllSubmatch(page, -1) {
		form.Set(html.UnescapeString(string(in[1])), html.UnescapeString(string(in[2])))
	}
	form.Set("username", username)
	form.Set("password", password)
	req, err = http.NewRequestWithContext(ctx, http.MethodPost, action.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err = hc.Do(req)
	if err != nil {
		return nil, err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close() // read-only
	if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
		if strings.Contains(string(body), "Incorrect username or password") {
			return nil, errors.New("cognitolocal: hosted UI: incorrect username or password")
		}
		return nil, fmt.Errorf("cognitolocal: POST %s: HTTP %d: %s", action, resp.StatusCode, body)
	}
	return resp.Location()
}
