package web

import "net/http"

// IsPreflight reports whether r is a CORS preflight: an OPTIONS request
// naming the method it asks about in Access-Control-Request-Method.
// Browsers send preflights without credentials, so a handler that lets
// them through (allow_preflight) hands the question to the next handler
// (the application's CORS answer) instead of asking a script to sign in.
func IsPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
}
