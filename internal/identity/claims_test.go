package identity

import (
	"encoding/json"
	"testing"
)

func TestEmailVerified(t *testing.T) {
	for raw, want := range map[string]bool{
		`true`: true, `"true"`: true, // token form, userInfo form
		`false`: false, `"false"`: false, `"TRUE"`: false, `1`: false,
		`"1"`: false, `null`: false, ``: false,
	} {
		if got := EmailVerified([]byte(raw)); got != want {
			t.Errorf("EmailVerified(%s) = %v; want %v", raw, got, want)
		}
		c := IDClaims{EmailVerifiedRaw: json.RawMessage(raw)}
		if got := c.EmailVerified(); got != want {
			t.Errorf("IDClaims.EmailVerified with %s = %v; want %v", raw, got, want)
		}
	}
}

func TestParseIDClaims(t *testing.T) {
	for _, tc := range []struct {
		js, username, provider string
	}{
		{`{"iss":"i","sub":"s"}`, "s", ""},
		{`{"iss":"i","sub":"s","preferred_username":"p"}`, "p", ""},
		{`{"iss":"i","sub":"s","cognito:username":"c","preferred_username":"p"}`, "c", ""},
		{`{"iss":"i","sub":"s","identities":[{"providerName":"Google"}]}`, "s", "Google"},
		{`{"iss":"i","sub":"s","identities":"[{\"providerName\":\"Okta\"}]"}`, "s", "Okta"},
		{`{"iss":"i","sub":"s","identities":[]}`, "s", ""},
	} {
		c, err := ParseIDClaims(json.RawMessage(tc.js))
		if err != nil {
			t.Fatalf("%s: %v", tc.js, err)
		}
		if c.Username() != tc.username || c.Provider() != tc.provider {
			t.Errorf("%s: username %q provider %q; want %q %q", tc.js, c.Username(), c.Provider(), tc.username, tc.provider)
		}
	}
	for _, bad := range []string{`{"sub":"s"}`, `{"iss":"i"}`, `{"iss":"i","sub":"s","email":1}`, `[]`} {
		if _, err := ParseIDClaims(json.RawMessage(bad)); err == nil {
			t.Errorf("%s: parsed; want an error", bad)
		}
	}
}

func TestWithLocalUserCopies(t *testing.T) {
	id := &Identity{Subject: "s", Pool: "p", Groups: []string{"g"}, RawClaims: json.RawMessage(`{"a":1}`)}
	m := id.WithLocalUser("u_1", []string{"editor"})
	if m == id || id.UserID != "" || id.Roles != nil {
		t.Fatal("the verified identity was changed in place")
	}
	if m.Subject != "s" || m.Pool != "p" || m.UserID != "u_1" || !m.HasAnyRole([]string{"editor"}) || !m.HasAnyGroup([]string{"g"}) {
		t.Errorf("mapped copy: %+v", m)
	}
	if v, ok := m.Claim("a"); !ok || v != "1" {
		t.Errorf("Claim(a) on the copy = %q, %v", v, ok)
	}
}

// TestParseIDClaimsStrict: the claims are read as the verifier reads a
// token, never more leniently: a repeated member or a wrong type is
// refused, a name is matched exactly (encoding/json would take "ISS" for
// "iss"), and null counts as absent.
func TestParseIDClaimsStrict(t *testing.T) {
	for _, c := range []struct {
		raw  string
		ok   bool
		want string // the username, when ok
	}{
		{`{"iss":"i","sub":"s","cognito:username":"alice"}`, true, "alice"},
		{`{"iss":"i","sub":"s","cognito:username":null,"email":null,"cognito:groups":null}`, true, "s"},
		{`{"iss":"i","sub":"s","cognito:username":"alice","cognito:username":"boss"}`, false, ""},
		{`{"iss":"i","sub":"s","Cognito:Username":"boss"}`, true, "s"},
		{`{"ISS":"i","sub":"s"}`, false, ""},
		{`{"iss":"i","sub":"s","email":["a@x"]}`, false, ""},
		{`{"iss":"i","sub":"s","cognito:groups":"admins"}`, false, ""},
		{`{"iss":"i","sub":"s","custom:from_sso":1}`, false, ""},
		{"{\"iss\":\"i\",\"sub\":\"s\",\"email\":\"\xff\"}", false, ""},
	} {
		got, err := ParseIDClaims(json.RawMessage(c.raw))
		if (err == nil) != c.ok || (c.ok && got.Username() != c.want) {
			t.Errorf("%s: %+v, %v; want ok=%v username %q", c.raw, got, err, c.ok, c.want)
		}
	}
}
