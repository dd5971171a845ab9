package urlpolicy

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

func TestIsLoopbackHost(t *testing.T) {
	for _, host := range []string{
		"localhost", "LOCALHOST", "LocalHost",
		"127.0.0.1", "127.0.0.2", "127.255.255.254",
		"::1", "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1",
	} {
		if !IsLoopbackHost(host) {
			t.Errorf("IsLoopbackHost(%q) = false; want true", host)
		}
	}
	for _, host := range []string{
		"", "localho\u017ft", "\u212Aocalhost", "app.localhost", "smtp.LOCALHOST", "localhost.", "localhost.evil.example",
		"evil-localhost", "localhost:8080", "[::1]", "::1%lo", "127.1", "0x7f000001",
		"0.0.0.0", "::", "128.0.0.1", "10.0.0.1", "::2", "example.com",
	} {
		if IsLoopbackHost(host) {
			t.Errorf("IsLoopbackHost(%q) = true; want false", host)
		}
	}
}

func TestCheckTransport(t *testing.T) {
	for _, tc := range []struct{ raw, wantErr string }{
		{"https://example.com/x", ""},
		{"HTTPS://example.com", ""},
		{"http://localhost:9229", ""},
		{"http://LOCALHOST:9229", ""},
		{"http://127.0.0.1/", ""},
		{"http://[::1]:8080/", ""},
		{"http://example.com", "must use https (plain http is allowed only on a loopback host)"},
		{"http://app.localhost:3000", "must use https"},
		{"http://localhost.evil.example", "must use https"},
		{"ftp://localhost", "must be an https URL"},
		{"//example.com", "must be an https URL"},
	} {
		u, err := url.Parse(tc.raw)
		if err != nil {
			t.Fatal(err)
		}
		err = CheckTransport(u)
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("CheckTransport(%q) = %v; want %q", tc.raw, err, tc.wantErr)
		}
	}
}

func TestCheckTrustedURL(t *testing.T) {
	for _, tc := range []struct{ raw, wantErr string }{
		{"https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC", ""},
		{"http://localhost:9229/local_1", ""},
		{"https://example.com/p?x=1", `issuer "https://example.com/p?x=1" is not an absolute URL without credentials, query or fragment`},
		{"https://example.com/p#f", "is not an absolute URL"},
		{"https://u:p@example.com/p", "is not an absolute URL"},
		{"/p", "is not an absolute URL"},
		{"http://example.com/p", `issuer "http://example.com/p" must use https (plain http is allowed only on a loopback host)`},
	} {
		err := CheckTrustedURL("issuer", tc.raw)
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("CheckTrustedURL(%q) = %v; want %q", tc.raw, err, tc.wantErr)
		}
	}
}

func TestCheckEndpointURL(t *testing.T) {
	for _, ok := range []string{"https://idp.example.com/token", "https://idp.example.com/authorize?tenant=x", "http://127.0.0.1:5556/auth"} {
		if err := CheckEndpointURL(ok); err != nil {
			t.Errorf("CheckEndpointURL(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "/token", "https://u@idp.example.com/token", "http://idp.example.com/token", "javascript:alert(1)"} {
		if err := CheckEndpointURL(bad); err == nil {
			t.Errorf("CheckEndpointURL(%q) accepted", bad)
		}
	}
}

func TestParseBaseURL(t *testing.T) {
	for _, tc := range []struct{ raw, want string }{
		{"https://app.example.com", "https://app.example.com"},
		{"https://app.example.com/", "https://app.example.com"},
		{"https://app.example.com:8443", "https://app.example.com:8443"},
		{"http://localhost:9080", "http://localhost:9080"},
		{"http://127.0.0.1:9229/", "http://127.0.0.1:9229"},
	} {
		u, err := ParseBaseURL(tc.raw)
		if err != nil || u.Scheme+"://"+u.Host != tc.want {
			t.Errorf("ParseBaseURL(%q) = %v, %v; want %q", tc.raw, u, err, tc.want)
		}
	}
	for _, raw := range []string{
		"", "app.example.com", "https://app.example.com/path", "https://app.example.com//",
		"https://app.example.com?x=1", "https://app.example.com?", "https://app.example.com#x",
		"https://app.example.com#", "https://app.example.com/?", "https://user@app.example.com",
	} {
		if _, err := ParseBaseURL(raw); !errors.Is(err, ErrNotBaseURL) {
			t.Errorf("ParseBaseURL(%q) = %v; want ErrNotBaseURL", raw, err)
		}
	}
	for _, raw := range []string{"http://app.example.com", "http://app.localhost:8080", "ftp://app.example.com"} {
		if _, err := ParseBaseURL(raw); err == nil || errors.Is(err, ErrNotBaseURL) {
			t.Errorf("ParseBaseURL(%q) = %v; want a transport error", raw, err)
		}
	}
}
