package integration

import (
	"net/http"
	"strings"
	"testing"
)

// forwardCaddyfile: one cognito_login with forward_token (@FORWARD@), in
// front of the echo upstream.
const forwardCaddyfile = `{
	admin {$CADDY_ADMIN}
	auto_https off
	cognito {
		store sqlite @DB@
		pool main {
			issuer @ISSUER@
			client_id @CLIENT_ID@
			client_secret @CLIENT_SECRET@
			domain @DOMAIN@
		}
	}
}

http://127.0.0.1:@PORT@ {
	cognito_login {
		secret @SECRET@
		admit email_domain @PARTNERS@
		@FORWARD@
	}
	reverse_proxy @UPSTREAM@
}
`

// TestForwardToken: with `forward_token access` the upstream gets
// `Authorization: Bearer <the access token cognito-local issued at the
// sign-in>`, in place of whatever Authorization the client sent, and
// Caddy's debug and access logs still hold no token; with `forward_token
// id header X-Id-Token` the ID token arrives alone in X-Id-Token, a
// client's own X-Id-Token (any spelling) never does, and no Authorization
// is added. Nothing else carries a token. (Off, the default, is
// TestClaimNoTokenReachesLoginUpstream.)
func TestForwardToken(t *testing.T) {
	t.Run("access", func(t *testing.T) {
		cf := withDebugLog(t, strings.Replace(forwardCaddyfile, "@FORWARD@", "forward_token access", 1))
		ls, rec := newRecordedCognitoLoginSite(t, cf)
		email := uniqueEmail(t, "fay", loginPartnerDom)
		cognitoUser(t, ls.s, email, nil, nil)
		c := newWebClient(t)
		ls.signInPlain(t, c, "/app", email).wantSignedIn(t, "/app")
		tk := onlySignIn(t, rec)

		for _, r := range []result{
			c.navigate(ls.base + "/app"),
			c.api(http.MethodGet, ls.base+"/api/x", nil, "Authorization", "Bearer forged-by-the-client"),
			c.api(http.MethodPost, ls.base+"/api/x", strings.NewReader("{}"), "Content-Type", "application/json", "authorization", "Basic Zm9vOmJhcg=="),
		} {
			if r.Upstream == nil {
				t.Fatalf("want the upstream, got %s", r)
			}
			if got := r.Upstream.Headers["Authorization"]; len(got) != 1 || got[0] != "Bearer "+tk.Access {
				t.Errorf("%s %s: upstream Authorization %q, want Bearer <the session's access token>", r.Upstream.Method, r.Upstream.Path, abbrevAll(got))
			}
			var others secretSet
			others.add("the ID token", tk.ID)
			others.add("the refresh token", tk.Refresh)
			for k, vs := range r.Upstream.Headers {
				for _, v := range vs {
					if k != "Authorization" && (strings.Contains(v, tk.Access) || len(others.leaks(v)) > 0) {
						t.Errorf("upstream header %s carries a token", k)
					}
				}
			}
		}
		var secrets secretSet
		secrets.addTokens(tk)
		wantCleanLog(t, ls.caddy.Output(), &secrets, "the authorization code")
	})

	t.Run("id in a header of its own", func(t *testing.T) {
		ls, rec := newRecordedCognitoLoginSite(t, withDebugLog(t, strings.Replace(forwardCaddyfile, "@FORWARD@", "forward_token id header X-Id-Token", 1)))
		email := uniqueEmail(t, "gus", loginPartnerDom)
		cognitoUser(t, ls.s, email, nil, nil)
		c := newWebClient(t)
		ls.signInPlain(t, c, "/app", email).wantSignedIn(t, "/app")
		tk := onlySignIn(t, rec)
		r := c.api(http.MethodGet, ls.base+"/api/x", nil, "X-Id-Token", "forged", "X_Id_Token", "forged", "Authorization", "Bearer app-own")
		if r.Upstream == nil {
			t.Fatalf("want the upstream, got %s", r)
		}
		if got := r.Upstream.Headers["X-Id-Token"]; len(got) != 1 || got[0] != tk.ID {
			t.Errorf("upstream X-Id-Token %q, want the session's ID token alone", abbrevAll(got))
		}
		for k := range r.Upstream.Headers {
			if k != "X-Id-Token" && strings.EqualFold(strings.ReplaceAll(k, "_", "-"), "X-Id-Token") {
				t.Errorf("the client's %s reached the upstream", k)
			}
		}
		if got := r.Upstream.Headers["Authorization"]; len(got) != 1 || got[0] != "Bearer app-own" {
			t.Errorf("upstream Authorization %q: with another header named, the client's Authorization goes through untouched", got)
		}
		// The access log records the request as the client sent it, so no
		// token is there; Caddy redacts only Authorization, and its
		// reverse_proxy debug line shows the upstream request's headers,
		// X-Id-Token included (README: keep the default header).
		var secrets secretSet
		secrets.addTokens(tk)
		access := 0
		for _, line := range strings.Split(ls.caddy.Output(), "\n") {
			if !strings.Contains(line, `"logger":"http.log.access`) {
				continue
			}
			access++
			if found := secrets.leaks(line); len(found) > 0 {
				t.Errorf("the access log holds %s: %s", strings.Join(found, ", "), abbrev(line))
			}
		}
		if access == 0 {
			t.Error("no access log line: the check proves nothing")
		}
		// without a session, nothing is forwarded and nothing reaches the upstream
		if r := newWebClient(t).api(http.MethodGet, ls.base+"/api/x", nil); r.Upstream != nil || r.Status != http.StatusUnauthorized {
			t.Errorf("no session: %s", r)
		}
	})
}

// onlySignIn is the one token response the recorder saw: the sign-in's.
func onlySignIn(t *testing.T, rec *tokenRecorder) issuedTokens {
	t.Helper()
	issued := rec.tokens()
	if len(issued) != 1 || issued[0].Access == "" || issued[0].ID == "" {
		t.Fatalf("the recording proxy saw %d token responses, want the sign-in's", len(issued))
	}
	return issued[0]
}

func abbrevAll(l []string) []string {
	out := make([]string, len(l))
	for i, v := range l {
		out[i] = abbrev(v)
	}
	return out
}
