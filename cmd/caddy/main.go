// Command caddy is a development build of Caddy with Caddy's standard modules
// and the caddy-cognito plugin. It builds the same server that
// `xcaddy build --with github.com/caddy-cognito/caddy-cognito` produces, but
// with a plain `go build -o bin/caddy-dev ./cmd/caddy`, which is faster for
// local work and tests.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/caddy-cognito/caddy-cognito"
)

func main() {
	caddycmd.Main()
}
