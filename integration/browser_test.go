package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-cognito/caddy-cognito/integration/internal/cognitolocal"
)

type browserPage struct {
	Status int    `json:"status"`
	Text   string `json:"text"`
}

// openInChromium loads url in a real headless chromium with the given
// cookies (name=value pairs) and returns what the page shows.
func openInChromium(t *testing.T, url string, cookies map[string]string) browserPage {
	t.Helper()
	var cs []map[string]any
	for k, v := range cookies {
		cs = append(cs, map[string]any{"name": k, "value": v, "url": url})
	}
	var p browserPage
	runNodeBrowser(t, "browser-fetch.js", map[string]any{"url": url, "cookies": cs}, time.Minute, &p)
	return p
}

// runNodeBrowser runs one of testenv's chromium scripts (playwright-core
// driving Debian's chromium) with input as JSON on stdin and decodes what
// it prints into out. A missing chromium or playwright-core skips the test
// (fails it under CI=true).
func runNodeBrowser(t *testing.T, script string, input any, timeout time.Duration, out any) {
	t.Helper()
	chromium, err := cognitolocal.Chromium()
	if err != nil {
		cognitolocal.Missing(t, "%v", err)
	}
	testenv, err := cognitolocal.TestenvDir()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(testenv, "node_modules", "playwright-core")); err != nil {
		cognitolocal.Missing(t, "playwright-core is not installed in testenv/node_modules")
	}
	in, _ := json.Marshal(input)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join(testenv, script)) //nolint:gosec // G204: node running a script of testenv/
	cmd.Dir = testenv
	cmd.Env = append(cmd.Environ(), "CHROMIUM="+chromium)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	printed, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, stderr.String())
	}
	if err := json.Unmarshal(printed, out); err != nil {
		t.Fatalf("%s printed %q: %v", script, printed, err)
	}
}

// TestBrowserCookieToken: a real browser holding the access token in a
// cookie gets through; without it, it is refused.
func TestBrowserCookieToken(t *testing.T) {
	s := getStack(t)
	tok := s.login(t, s.web.ClientID, alice)
	p := openInChromium(t, s.base+"/cookie/page", map[string]string{"session": tok.AccessToken})
	if p.Status != 200 || !strings.Contains(p.Text, s.users[alice].Sub) {
		t.Fatalf("with the cookie the browser got HTTP %d: %q", p.Status, p.Text)
	}
	p = openInChromium(t, s.base+"/cookie/page", nil)
	if p.Status != 401 || strings.Contains(p.Text, s.users[alice].Sub) {
		t.Fatalf("without the cookie the browser got HTTP %d: %q", p.Status, p.Text)
	}
}
