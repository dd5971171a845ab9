package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Driving chromium through testenv/browser-login.js: the steps a test
// writes, and what the browser showed after each.

// ---- the browser ----

// browserStep is one step of testenv/browser-login.js.
type browserStep struct {
	Name       string            `json:"name,omitempty"`
	Goto       string            `json:"goto,omitempty"`
	Fill       map[string]string `json:"fill,omitempty"`
	Click      string            `json:"click,omitempty"`
	WaitURL    string            `json:"wait_url,omitempty"`
	WaitFor    string            `json:"wait_for,omitempty"`
	Screenshot string            `json:"screenshot,omitempty"`
}

type browserCookie struct {
	Name     string  `json:"name"`
	Value    string  `json:"value"`
	Domain   string  `json:"domain"`
	Path     string  `json:"path"`
	HTTPOnly bool    `json:"httpOnly"`
	Secure   bool    `json:"secure"`
	SameSite string  `json:"sameSite"`
	Expires  float64 `json:"expires"`
}

type browserForm struct {
	Action string `json:"action"`
	Method string `json:"method"`
	Fields []struct {
		Name  string `json:"name"`
		Type  string `json:"type"`
		Value string `json:"value"`
	} `json:"fields"`
}

// field is the value of a hidden field, and whether the form has it.
func (f browserForm) field(name string) (string, bool) {
	for _, x := range f.Fields {
		if x.Name == name {
			return x.Value, true
		}
	}
	return "", false
}

// browserReport is what the browser showed after one step.
type browserReport struct {
	Name        string          `json:"name"`
	URL         string          `json:"url"`
	Title       string          `json:"title"`
	Status      int             `json:"status"`
	Text        string          `json:"text"`
	Forms       []browserForm   `json:"html_forms"`
	Navigations []browserNav    `json:"navigations"`
	Cookies     []browserCookie `json:"cookies"`
	Error       string          `json:"error"`
}

type browserNav struct {
	URL      string `json:"url"`
	Status   int    `json:"status"`
	Location string `json:"location"`
}

func (r browserReport) String() string {
	text := r.Text
	if len(text) > 600 {
		text = text[:600] + "…"
	}
	var navs []string
	for _, n := range r.Navigations {
		navs = append(navs, fmt.Sprintf("%d %s", n.Status, n.URL))
	}
	return fmt.Sprintf("step %q: HTTP %d at %s (title %q)\nnavigations: %s\ntext: %q", r.Name, r.Status, r.URL, r.Title, strings.Join(navs, " → "), text)
}

// cookie returns the browser's cookie of that name, if any.
func (r browserReport) cookie(name string) (browserCookie, bool) {
	for _, c := range r.Cookies {
		if c.Name == name {
			return c, true
		}
	}
	return browserCookie{}, false
}

// postForm returns the first POST form on the page.
func (r browserReport) postForm() (browserForm, bool) {
	for _, f := range r.Forms {
		if f.Method == "post" {
			return f, true
		}
	}
	return browserForm{}, false
}

// jsonBody decodes the JSON a page shows (chromium renders a JSON answer
// as text, possibly below a pretty-print control).
func (r browserReport) jsonBody(t *testing.T, v any) {
	t.Helper()
	i, j := strings.Index(r.Text, "{"), strings.LastIndex(r.Text, "}")
	if i < 0 || j < i {
		t.Fatalf("the page shows no JSON:\n%s", r)
	}
	if err := json.Unmarshal([]byte(r.Text[i:j+1]), v); err != nil {
		t.Fatalf("the page's JSON does not decode: %v\n%s", err, r)
	}
}

// runBrowser plays steps in one chromium context that starts with cookies
// and returns a report per step. A step that failed in the browser (a
// timeout waiting for a URL, a missing button) fails the test with what the
// page showed.
func runBrowser(t *testing.T, cookies []browserCookie, steps ...browserStep) []browserReport {
	t.Helper()
	if cookies == nil {
		cookies = []browserCookie{}
	}
	var res struct {
		Steps []browserReport `json:"steps"`
	}
	runNodeBrowser(t, "browser-login.js", map[string]any{"cookies": cookies, "steps": steps, "timeout_ms": 20000}, 3*time.Minute, &res)
	for _, st := range steps {
		if st.Screenshot != "" {
			if _, err := os.Stat(st.Screenshot); err == nil {
				t.Logf("screenshot (%s): %s", st.Name, st.Screenshot)
			}
		}
	}
	for _, r := range res.Steps {
		if r.Error != "" {
			t.Fatalf("in the browser: %s\n%s", r.Error, r)
		}
	}
	if len(res.Steps) != len(steps) {
		t.Fatalf("browser-login.js reported %d steps of %d", len(res.Steps), len(steps))
	}
	return res.Steps
}

// signInSteps: open path on the site, expect cognito-local's sign-in form,
// sign in as user, and wait to be back at waitFor.
func (ls *loginSite) signInSteps(shots, path, user, waitFor string) []browserStep {
	return []browserStep{
		{Name: "sign-in form", Goto: ls.base + path, WaitURL: ls.s.cl.URL + "/oauth2/authorize", Screenshot: filepath.Join(shots, "01-sign-in-form.png")},
		{Name: "signed in", Fill: map[string]string{`input[name="username"]`: user, `input[name="password"]`: password},
			Click: `button[type="submit"]`, WaitURL: waitFor, Screenshot: filepath.Join(shots, "02-after-sign-in.png")},
	}
}
