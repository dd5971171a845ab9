package integration

import (
	"bytes"
	"context"
	"encoding/json"
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
	chromium, err := cognitolocal.Chromium()
	if err != nil {
		cognitolocal.Missing(t, "%v", err)
	}
	testenv, err := cognitolocal.TestenvDir()
	if err != nil {
		t.Fatal(err)
	}
	var cs []map[string]any
	for k, v := range cookies {
		cs = append(cs, map[string]any{"name": k, "value": v, "url": url})
	}
	in, _ := json.Marshal(map[string]any{"url": url, "cookies": cs})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join(testenv, "browser-fetch.js"))
	cmd.Dir = testenv
	cmd.Env = append(cmd.Environ(), "CHROMIUM="+chromium)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("browser-fetch.js: %v\n%s", err, stderr.String())
	}
	var p browserPage
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("browser-fetch.js printed %q: %v", out, err)
	}
	return p
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
