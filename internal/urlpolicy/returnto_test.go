package urlpolicy

import (
	"bufio"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var testReturnPolicy = ReturnPolicy{
	AllowedOrigins: []string{
		"https://app.example.com",
		"https://www.whitelisteddomain.tld",
		"https://XN--80AK6AA92E.com", // punycode, listed on purpose; upper-case on purpose
		"https://admin.example.com:8443",
		"http://localhost:8080",
	},
	Default: "/home",
}

func TestReturnPolicyAccepts(t *testing.T) {
	for _, tc := range []struct{ next, want string }{
		{"/", "/"},
		{"/app", "/app"},
		{"/app?x=1#frag", "/app?x=1#frag"},
		{"/a/b%20c", "/a/b%20c"},
		{"/a/b/", "/a/b/"},
		{"/app?next=%2F%2Fevil.com", "/app?next=%2F%2Fevil.com"}, // an encoded value in the query is the app's business
		{"/app?q={x}|y", "/app?q=%7Bx%7D%7Cy"},                   // re-serialised, not copied
		{"/caf%C3%A9", "/caf%C3%A9"},
		{"/%252f%252fevil.com", "/%252f%252fevil.com"}, // decoded once it is "/%2f%2fevil.com": a plain path
		{"/@evil.com", "/@evil.com"},                   // userinfo needs an authority; this is a path
		// Published payloads that are in fact harmless same-origin paths.
		{"/javascript:alert(1)", "/javascript:alert(1)"},
		{"/.example.com", "/.example.com"},
		{"/http:/example.com", "/http:/example.com"},
		{"/https:example.com", "/https:example.com"},
		// Allow-listed absolute URLs, returned in the configured spelling.
		{"https://app.example.com", "https://app.example.com/"},
		{"https://app.example.com/", "https://app.example.com/"},
		{"https://app.example.com/x?y=1#z", "https://app.example.com/x?y=1#z"},
		{"HTTPS://App.Example.COM/x", "https://app.example.com/x"},
		{"https://app.example.com:443/x", "https://app.example.com/x"},
		{"https://app.example.com?x=1", "https://app.example.com/?x=1"},
		{"https://admin.example.com:8443/", "https://admin.example.com:8443/"},
		{"https://xn--80ak6aa92e.com/", "https://xn--80ak6aa92e.com/"},
		{"http://localhost:8080/dev", "http://localhost:8080/dev"},
	} {
		got, ok := testReturnPolicy.Resolve(tc.next)
		if !ok || got != tc.want {
			t.Errorf("Resolve(%q) = %q, %v; want %q, true", tc.next, got, ok, tc.want)
		}
	}
}

// refusedCases are hand-picked attacks, most of them from oauth2-proxy's
// IsValidRedirect table (pkg/app/redirect/validator_test.go) and the bugs
// fixed in mod_auth_openidc (CVE-2021-32786 backslash, CVE-2022-23527 tab);
// the rest probe the rules in returnto.go one at a time.
var refusedCases = []string{
	"", "//redirect", "//evil", "/\\evil", "\\/evil", "\\\\evil", "/%2f%2fevil", "/%2F/evil", "/%5cevil", "/%5Cevil",
	"/\\evil.com", "/ /evil.com", "/ \\evil.com", "/\t/evil.com", "/\t\\evil.com", "/\v/evil.com", "/\v\\evil.com",
	"/\n/evil.com", "/\n\\evil.com", "/\r/evil.com", "/\r\\evil.com", "/\t/\t\\evil.com", "/\t\t/\t/evil.com",
	"/\t\t\\\t/evil.com", "/\t\t/\t\t\\evil.com", "/\t\t\\\t\t/evil.com", "/./\\evil.com", "/./../../\\evil.com",
	"/%09/evil.com", "/%0a/evil.com", "/%0d/evil.com", "/%00/evil.com", "/%0B/evil.com", "/%7f/evil.com",
	"/app%0d%0aSet-Cookie:x=1", "/app?x=%0d%0a", "/app#%00", "/app\x00", "/a b", "/app?x=1 2",
	"/%E2%80%AE/evil.com", "/%E2%80%8B/evil.com", "/%C2%85/evil.com", "/%E2%80%A8", "/%ff", "/%zz", "/%",
	"/.//evil.com", "/x/..//evil.com", "/%2e%2e/x", "/./x", "/x/.", "/a//b", "/%3F//evil.com", "/%23//evil.com",
	"//evil.com/%2f..", "///evil.com", "/http://evil.com", "/https:/%5cevil.com/",
	"javascript:alert(1)", "JaVaScRiPt:alert(1)", "data:text/html,<script>alert(1)</script>", "vbscript:x",
	"evil.com", "app.example.com/x", "foo.bar/redirect", "?x=1", "#frag", "../x", ".",
	"http://app.example.com/", "https://evil.com/", "https://app.example.com.evil.com/",
	"https://evil.com?x=https://app.example.com", "https://app.example.com@evil.com", "https://user@app.example.com/",
	"https://:@app.example.com/", "https://app.example.com:8443/", "https://app.example.com:0443x/",
	"https://app.example.com:65536/", "https://app.example.com:/x", "https://app.example.com./",
	"https://sub.app.example.com/", "https://admin.example.com/", "https://admin.example.com:443/",
	"https:app.example.com/x", "https:/app.example.com/x", "https:///app.example.com/x", "https:\\\\app.example.com",
	"https://app.example.com\\@evil.com", "https://app.example.com%2f@evil.com", "https://app%2eexample.com/",
	"https://app.example.com//evil.com", "https://app.example.com/%2f%2fevil.com", "https://app.example.com/\t/x",
	"https://app.example.com/a/../..//evil.com", "https://аpp.example.com/", "https://app.еxample.com/",
	"https://xn--pp-8kc.example.com/", "https://xn--80ak6aa92e.com.evil/", "ftp://app.example.com/",
	"ws://app.example.com/", "http://localhost:8081/", "http://127.0.0.1:8080/",
	"/" + strings.Repeat("a", maxReturnToLen), "https://app.example.com/" + strings.Repeat("a", maxReturnToLen),
}

func TestReturnPolicyRefuses(t *testing.T) {
	if len(refusedCases) < 60 {
		t.Fatalf("only %d refused cases", len(refusedCases))
	}
	for _, next := range refusedCases {
		assertRefused(t, testReturnPolicy, next)
	}
}

// TestReturnPolicyRefusesPublishedPayloads replays the payload lists under
// testdata/open-redirect (see the header of each file for its source).
func TestReturnPolicyRefusesPublishedPayloads(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "open-redirect", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no payload lists: %v", err)
	}
	total := 0
	for _, name := range files {
		f, err := os.Open(name) //nolint:gosec // G304: a payload list from filepath.Glob over testdata
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := sc.Text()
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			total++
			assertRefused(t, testReturnPolicy, line)
			if u, err := url.QueryUnescape(line); err == nil {
				assertRefused(t, testReturnPolicy, u) // as oauth2-proxy replays them
			}
		}
		_ = f.Close() // read-only
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	if total < 150 {
		t.Errorf("only %d published payloads replayed", total)
	}
}

func assertRefused(t *testing.T, p ReturnPolicy, next string) {
	t.Helper()
	got, ok := p.Resolve(next)
	if ok || got != p.defaultTarget() {
		t.Errorf("Resolve(%q) = %q, %v; want default %q, false", next, got, ok, p.defaultTarget())
	}
}

func TestReturnPolicyDefault(t *testing.T) {
	for _, tc := range []struct{ def, want string }{
		{"", "/"},
		{"/home?tab=1", "/home?tab=1"},
		{"//evil.com", "/"}, // an unsafe Default fails closed (Validate reports it)
		{"https://app.example.com/", "/"},
	} {
		p := ReturnPolicy{Default: tc.def}
		if got, ok := p.Resolve("//evil.com"); ok || got != tc.want {
			t.Errorf("Default %q: Resolve = %q, %v; want %q, false", tc.def, got, ok, tc.want)
		}
	}
	var zero ReturnPolicy
	if got, ok := zero.Resolve("https://app.example.com/"); ok || got != "/" {
		t.Errorf("zero policy accepted an absolute URL: %q, %v", got, ok)
	}
}

func TestReturnPolicyValidate(t *testing.T) {
	if err := testReturnPolicy.Validate(); err != nil {
		t.Fatalf("valid policy: %v", err)
	}
	if err := (ReturnPolicy{}).Validate(); err != nil {
		t.Fatalf("zero policy: %v", err)
	}
	for _, bad := range []ReturnPolicy{
		{AllowedOrigins: []string{"http://app.example.com"}},
		{AllowedOrigins: []string{"http://app.localhost:3000"}}, // not loopback for every client: see IsLoopbackHost
		{AllowedOrigins: []string{"app.example.com"}},
		{AllowedOrigins: []string{"https://app.example.com/path"}},
		{AllowedOrigins: []string{"https://app.example.com?x"}},
		{AllowedOrigins: []string{"https://app.example.com#x"}},
		{AllowedOrigins: []string{"https://user@app.example.com"}},
		{AllowedOrigins: []string{"https://*.example.com"}},
		{AllowedOrigins: []string{"https://app.example.com:99999"}},
		{AllowedOrigins: []string{"https://аpp.example.com"}}, // Cyrillic а: must be listed as punycode
		{AllowedOrigins: []string{"javascript:alert(1)"}},
		{AllowedOrigins: []string{""}},
		{Default: "//evil.com"},
		{Default: "home"},
		{Default: "/\\evil"},
		{Default: "https://app.example.com/"},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil; want an error", bad)
		}
	}
	for _, ok := range []string{"http://localhost:3000", "http://127.0.0.1:8080", "http://[::1]:8080", "https://[2001:db8::1]", "https://app.example.com/", "http://LOCALHOST:3000", "https://app.localhost"} {
		if err := (ReturnPolicy{AllowedOrigins: []string{ok}}).Validate(); err != nil {
			t.Errorf("Validate(%q): %v", ok, err)
		}
	}
}

// FuzzReturnPolicy checks the one property that matters: whatever comes in,
// what goes out is either a clean same-origin path or an allow-listed origin.
func FuzzReturnPolicy(f *testing.F) {
	for _, s := range refusedCases {
		f.Add(s)
	}
	f.Add("/app?x=1#frag")
	f.Fuzz(func(t *testing.T, next string) {
		got, _ := testReturnPolicy.Resolve(next)
		if strings.HasPrefix(got, "/") {
			if !safeRelative(got) || !isPlainURLText(got) {
				t.Fatalf("Resolve(%q) = %q: unsafe relative target", next, got)
			}
			return
		}
		u, err := url.Parse(got)
		if err != nil {
			t.Fatalf("Resolve(%q) = %q: %v", next, got, err)
		}
		o, ok := originOf(u)
		if !ok || u.User != nil {
			t.Fatalf("Resolve(%q) = %q: bad absolute target", next, got)
		}
		for _, a := range testReturnPolicy.AllowedOrigins {
			if w, err := parseAllowedOrigin(a); err == nil && w == o {
				return
			}
		}
		t.Fatalf("Resolve(%q) = %q: origin not allow-listed", next, got)
	})
}
