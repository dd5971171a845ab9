package caddycognito_test

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/lestrrat-go/httprc/v3"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

// Example_verifyAssertion is the README's Go example for an app behind
// Caddy ("Trusting the identity in your app"), kept here so it compiles.
func Example_verifyAssertion() {
	const keysURL = "https://app.example.com/.well-known/cognito-assertion-keys.json"
	ctx := context.Background()

	// Once, at start: a key set kept fresh in the background.
	cache, err := jwk.NewCache(ctx, httprc.NewClient())
	if err != nil {
		panic(err)
	}
	if err := cache.Register(ctx, keysURL, jwk.WithMinInterval(time.Minute)); err != nil {
		panic(err)
	}
	keys, err := cache.CachedSet(keysURL)
	if err != nil {
		panic(err)
	}

	// Per request:
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		tok, err := jwt.ParseHeader(r.Header, "X-Auth-Assertion", jwt.WithKeySet(keys),
			jwt.WithIssuer("https://app.example.com"), jwt.WithAudience("app.example.com"),
			jwt.WithAcceptableSkew(5*time.Second))
		if err != nil {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		user, _ := tok.Subject() // the X-Auth-User value, now proven
		w.Header().Set("Content-Type", "text/plain")
		_, _ = fmt.Fprintf(w, "signed in as %q\n", user) //nolint:gosec // G705: text/plain and quoted, no markup
	})
}
