package caddycognito

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

func TestResolveIssuer(t *testing.T) {
	for _, tc := range []struct {
		name                         string
		issuer, region, poolID, form string
		want, other, wantErr         string
	}{
		{name: "issuer", issuer: "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC", want: "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC"},
		{name: "region and pool", region: "eu-west-1", poolID: "eu-west-1_AbC", want: "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC"},
		{name: "region from pool id", poolID: "us-gov-west-1_Xy9", want: "https://cognito-idp.us-gov-west-1.amazonaws.com/us-gov-west-1_Xy9"},
		{name: "loopback http", issuer: "http://localhost:9229/local_1", want: "http://localhost:9229/local_1"},
		{name: "loopback ip", issuer: "http://127.0.0.1:9229/p", want: "http://127.0.0.1:9229/p"},
		{name: "both forms", issuer: "https://x.example", poolID: "eu-west-1_AbC", wantErr: "not both"},
		{name: "nothing", wantErr: "no issuer"},
		{name: "http remote", issuer: "http://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC", wantErr: "must use https"},
		{name: "http lookalike loopback", issuer: "http://localhost.evil.example/p", wantErr: "must use https"},
		{name: "other scheme", issuer: "ftp://example.com/p", wantErr: "https URL"},
		{name: "credentials", issuer: "https://user:pw@example.com/p", wantErr: "without credentials"}, //nolint:gosec // G101: a URL with credentials that must be refused
		{name: "query", issuer: "https://example.com/p?x=1", wantErr: "without credentials"},
		{name: "relative", issuer: "/p", wantErr: "absolute URL"},
		{name: "cognito trailing slash", issuer: "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC/", wantErr: "ends with a slash"},
		{name: "bad pool id", poolID: "AbC", wantErr: "does not look like"},
		{name: "region mismatch", region: "us-east-1", poolID: "eu-west-1_AbC", wantErr: "does not match"},
		{name: "updated form", poolID: "eu-west-1_AbC", form: "updated", want: "https://issuer-cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC",
			other: "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC"},
		{name: "original form named", poolID: "eu-west-1_AbC", form: "original", want: "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC"},
		{name: "unknown form", poolID: "eu-west-1_AbC", form: "replica", wantErr: "issuer_type must be"},
		{name: "form with issuer", issuer: "https://x.example/p", form: "updated", wantErr: "issuer_type goes with"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &Pool{Issuer: tc.issuer, Region: tc.region, UserPoolID: tc.poolID, IssuerType: tc.form}
			all, err := p.resolveIssuers(func(s string) string { return s })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v; want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || all[0] != tc.want {
				t.Fatalf("got %q, %v; want %q", all, err, tc.want)
			}
			// A Cognito pool id also accepts its other issuer form, and
			// nothing else; an explicit issuer is accepted alone.
			switch {
			case tc.poolID == "" && len(all) != 1:
				t.Fatalf("explicit issuer: got %q", all)
			case tc.poolID != "" && len(all) != 2:
				t.Fatalf("pool id: want both forms, got %q", all)
			case tc.other != "" && all[1] != tc.other:
				t.Fatalf("other form = %q; want %q", all[1], tc.other)
			}
		})
	}
}

func TestAppPoolSelection(t *testing.T) {
	one := &App{Pools: map[string]*Pool{"main": {}}}
	if p, err := one.Pool(""); err != nil || p != one.Pools["main"] {
		t.Fatalf("only pool by default: %v %v", p, err)
	}
	two := &App{Pools: map[string]*Pool{"a": {}, "b": {}}}
	if _, err := two.Pool(""); err == nil || !strings.Contains(err.Error(), "choose one") {
		t.Fatalf("two pools without a name: %v", err)
	}
	if _, err := two.Pool("c"); err == nil || !strings.Contains(err.Error(), `no pool named "c"`) {
		t.Fatalf("unknown pool: %v", err)
	}
}

func TestPoolPlaceholders(t *testing.T) {
	ti := newTestIssuer(t)
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TEST_COGNITO_ISSUER", ti.URL)
	t.Setenv("TEST_COGNITO_CLIENT", ti.ClientID)
	t.Setenv("TEST_COGNITO_EMPTY", "")
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()

	p := &Pool{
		Issuer:       "{env.TEST_COGNITO_ISSUER}",
		ClientIDs:    []string{"{env.TEST_COGNITO_CLIENT}", "{env.TEST_COGNITO_EMPTY}"},
		ClientSecret: "{file." + secretFile + "}",
	}
	if err := p.provision(ctx, "main"); err != nil {
		t.Fatal(err)
	}
	defer releaseKeySet(p.jwksURL)
	if p.issuer != ti.URL || len(p.clientIDs) != 1 || p.clientIDs[0] != ti.ClientID {
		t.Fatalf("issuer %q, clients %q", p.issuer, p.clientIDs)
	}
	if p.clientSecret != "s3cret" {
		t.Fatalf("client secret from file not expanded and trimmed")
	}
	if _, err := p.Verifier("access").Verify(context.Background(), ti.Sign(ti.AccessClaims(nil))); err != nil {
		t.Fatalf("token for the env-configured client: %v", err)
	}

	empty := &Pool{Issuer: ti.URL, ClientIDs: []string{"{env.TEST_COGNITO_EMPTY}"}}
	if err := empty.provision(ctx, "x"); err == nil || !strings.Contains(err.Error(), "no client_id") {
		t.Fatalf("only an empty env client id: %v", err)
	}
}

// With the postgres store Caddy refuses to start without the shared
// secret, naming the option; a DSN never shows its password.
func TestPostgresStoreNeedsSharedSecret(t *testing.T) {
	pools := map[string]*Pool{"main": {Issuer: "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf"}}
	a := &App{Pools: pools, Store: &StoreConfig{Driver: "postgres", DSN: "postgres://u:hunter2@db/cognito"}} //nolint:gosec // G101: a made-up password the messages must not show
	err := a.Validate()
	if err == nil || !strings.Contains(err.Error(), "`secret`") || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("Validate(postgres, no secret) = %v; want an error naming `secret`", err)
	}
	a.Secret = "0123456789abcdef0123456789abcdef"
	if err := a.Validate(); err != nil {
		t.Fatalf("Validate(postgres, secret) = %v", err)
	}
	if got := a.Store.resolved().where(); strings.Contains(got, "hunter2") {
		t.Fatalf("store named as %q", got)
	}
	a.Store.DSN = ""
	if err := a.Validate(); err == nil || !strings.Contains(err.Error(), "dsn") {
		t.Fatalf("Validate(postgres, no dsn) = %v; want an error naming dsn", err)
	}
}
