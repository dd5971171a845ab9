// Command pgserve runs a throwaway PostgreSQL (internal/pgtest: Debian's
// server binaries, a temporary data directory, a free loopback port) until
// it is sent SIGTERM or SIGINT, then stops it and removes its data. Once
// the server answers it prints `PG_DSN=<url>` (the postgres database,
// trust authentication) on stdout; scripts/bench-wrk.sh waits for that
// line.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/caddy-cognito/caddy-cognito/internal/pgtest"
)

func main() {
	srv, err := pgtest.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "pgserve:", err)
		os.Exit(1)
	}
	fmt.Printf("PG_DSN=%s\n", srv.DSN("postgres"))
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
	srv.Close()
}
