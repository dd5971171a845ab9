// Package integration holds caddy-cognito's end-to-end tests: Caddy built
// with xcaddy as a user builds it, real cognito-local pools and tokens, an
// upstream that echoes what it received, and aws-jwt-verify as a second
// opinion. Run them with `make test` (or `go test ./...` here); under
// CI=true a missing stand-in fails instead of skipping.
package integration
