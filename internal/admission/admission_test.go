package admission

import (
	"encoding/json"
	"testing"

	"github.com/caddy-cognito/caddy-cognito/internal/identity"
)

func claimsOf(t *testing.T, js string) *identity.IDClaims {
	t.Helper()
	c, err := identity.ParseIDClaims(json.RawMessage(js))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestAdmitRules: which rule admits which first-time identity, and how
// (link by username or email, or create, and with which email).
func TestAdmitRules(t *testing.T) {
	const (
		native   = `{"iss":"i","sub":"1","cognito:username":"dana","email":"dana@corp.example","email_verified":true,"given_name":"Dana"}`
		unverif  = `{"iss":"i","sub":"2","cognito:username":"eve","email":"eve@corp.example","email_verified":false}`
		fromSSO  = `{"iss":"i","sub":"3","cognito:username":"frank","custom:from_sso":"1"}`
		google   = `{"iss":"i","sub":"4","cognito:username":"google_123","email":"gus@gmail.example","email_verified":false,"identities":[{"providerName":"Google","userId":"123"}]}`
		okta     = `{"iss":"i","sub":"5","cognito:username":"okta_9","email":"olga@corp.example","identities":"[{\"providerName\":\"Okta\"}]"}`
		verified = `{"iss":"i","sub":"6","cognito:username":"hal","email":"hal@CORP.example","email_verified":"true"}`
		kelvin   = `{"iss":"i","sub":"7","cognito:username":"ian","email":"ian@\u212Aate.example","email_verified":true}`
		ascii    = `{"iss":"i","sub":"8","cognito:username":"ian","email":"ian@KATE.example","email_verified":true}`
	)
	type want struct {
		ok                    bool
		matchUser, matchEmail string
		create                bool
		createEmail, provider string
		onlyUnlinked          bool
	}
	for _, c := range []struct {
		rule   Rule
		claims string
		want   want
	}{
		{Rule{Rule: "sso_migration"}, fromSSO, want{ok: true, matchUser: "frank", onlyUnlinked: true}},
		{Rule{Rule: "sso_migration"}, native, want{}},
		{Rule{Rule: "trusted_provider", Providers: []string{"Google"}}, google, want{ok: true, matchEmail: "gus@gmail.example", provider: "Google"}},
		{Rule{Rule: "trusted_provider", Providers: []string{"Google"}, Create: true}, google, want{ok: true, matchEmail: "gus@gmail.example", provider: "Google", create: true, createEmail: "gus@gmail.example"}},
		{Rule{Rule: "trusted_provider", Providers: []string{"Google"}}, okta, want{}},
		{Rule{Rule: "trusted_provider", Providers: []string{"*"}}, okta, want{ok: true, matchEmail: "olga@corp.example", provider: "Okta"}},
		{Rule{Rule: "trusted_provider", Providers: []string{"*"}}, native, want{}},
		{Rule{Rule: "email_domain", Domains: []string{"corp.example"}}, native, want{ok: true, create: true, createEmail: "dana@corp.example"}},
		{Rule{Rule: "email_domain", Domains: []string{"@Corp.Example"}}, verified, want{ok: true, create: true, createEmail: "hal@CORP.example"}},
		{Rule{Rule: "email_domain", Domains: []string{"corp.example"}}, unverif, want{}},
		{Rule{Rule: "email_domain", Domains: []string{"example"}}, native, want{}},
		// Domains compare ASCII-case-insensitively, anything else exactly.
		{Rule{Rule: "email_domain", Domains: []string{"kate.example"}}, kelvin, want{}},
		{Rule{Rule: "email_domain", Domains: []string{"\u212Aate.example"}}, ascii, want{}},
		{Rule{Rule: "email_domain", Domains: []string{"Kate.Example"}}, ascii, want{ok: true, create: true, createEmail: "ian@KATE.example"}},
		{Rule{Rule: "any"}, unverif, want{ok: true, create: true}},
		{Rule{Rule: "any"}, native, want{ok: true, create: true, createEmail: "dana@corp.example"}},
	} {
		a, err := c.rule.admitter()
		if err != nil {
			t.Fatal(err)
		}
		adm, ok := a.admit(claimsOf(t, c.claims))
		got := want{ok: ok, matchUser: adm.MatchUsername, matchEmail: adm.MatchEmail, create: adm.Create != nil, provider: adm.Provider, onlyUnlinked: adm.OnlyUnlinked}
		if adm.Create != nil {
			got.createEmail = adm.Create.Email
		}
		if !ok {
			got = want{}
		}
		if got != c.want {
			t.Errorf("%+v on %s:\n got %+v\nwant %+v", c.rule, c.claims, got, c.want)
		}
	}
	for _, bad := range []Rule{{Rule: "trusted_provider"}, {Rule: "email_domain"}, {Rule: "everyone"}} {
		if _, err := bad.admitter(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
