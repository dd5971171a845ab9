// Command echo is a tiny upstream for demos and benchmarks: it answers every
// request with what it received, identity headers first. With
// `Accept: application/json` (or ?json) it answers JSON.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
	"sort"
	"strings"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9000", "address to listen on")
	flag.Parse()
	log.Printf("echo upstream listening on http://%s", *listen)
	srv := &http.Server{Addr: *listen, Handler: http.HandlerFunc(echo), ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}

func echo(w http.ResponseWriter, r *http.Request) {
	names := make([]string, 0, len(r.Header))
	for k := range r.Header {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool {
		ai, aj := isAuth(names[i]), isAuth(names[j])
		if ai != aj {
			return ai
		}
		return names[i] < names[j]
	})
	if _, ok := r.URL.Query()["json"]; ok || strings.Contains(r.Header.Get("Accept"), "application/json") {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"method": r.Method, "path": r.URL.Path, "headers": r.Header})
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	// Write errors are the client's problem.
	_, _ = fmt.Fprintf(w, "upstream received %s %s\n\n", r.Method, r.URL.RequestURI()) //nolint:gosec // G705: plain text with nosniff, never HTML
	for _, k := range names {
		for _, v := range r.Header[k] {
			if k == "Authorization" && len(v) > 24 {
				v = v[:24] + "…"
			}
			_, _ = fmt.Fprintf(w, "%s: %s\n", k, v) //nolint:gosec // G705: as above
		}
	}
}

func isAuth(name string) bool { return strings.HasPrefix(strings.ToLower(name), "x-auth-") }
