package caddycognito

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"os"
	"strings"
)

//go:embed pages/page.html
var builtinPages embed.FS

// pageNames are the pages an operator may replace (Login.Pages).
var pageNames = []string{"forbidden", "refused", "error", "signed_out", "logout"}

// pageData is what a page template gets. html/template escapes every
// value for its context, so nothing from a request or a token can inject
// markup.
type pageData struct {
	Title, Message string
	Site           string // the request's host
	// Action, CSRF, Next and Button make a POST form (the logout page).
	Action, CSRF, Next, Button string
	Links                      []pageLink
}

type pageLink struct{ Text, Href string }

// pageSet holds a parsed template per page name.
type pageSet struct{ pages map[string]*template.Template }

// loadPages parses the built-in page and the operator's replacements.
func loadPages(files map[string]string) (*pageSet, error) {
	builtin, err := template.ParseFS(builtinPages, "pages/page.html")
	if err != nil {
		return nil, err
	}
	ps := &pageSet{pages: map[string]*template.Template{}}
	for _, name := range pageNames {
		ps.pages[name] = builtin
	}
	for name, file := range files {
		if _, ok := ps.pages[name]; !ok {
			return nil, fmt.Errorf("page %q: not one of %s", name, strings.Join(pageNames, ", "))
		}
		src, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("page %q: %w", name, err)
		}
		t, err := template.New(name).Option("missingkey=error").Parse(string(src))
		if err != nil {
			return nil, fmt.Errorf("page %q: %s: %w", name, file, err)
		}
		ps.pages[name] = t
	}
	return ps, nil
}

// showPage renders one of the login handler's pages.
func (l *Login) showPage(w http.ResponseWriter, r *http.Request, status int, name string, d pageData) error {
	return renderPage(w, r, l.pages.pages[name], status, d)
}

// renderPage renders a page template. It is rendered into a buffer first,
// so a failing operator template gives a plain 500, never half a page.
func renderPage(w http.ResponseWriter, r *http.Request, t *template.Template, status int, d pageData) error {
	d.Site = r.Host
	var buf bytes.Buffer
	if err := t.Execute(&buf, d); err != nil {
		return fmt.Errorf("page %q: %w", t.Name(), err)
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self' https: http:; frame-ancestors 'none'; base-uri 'none'")
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}

func (l *Login) showError(w http.ResponseWriter, r *http.Request, status int, message string) error {
	return l.showPage(w, r, status, "error", pageData{Title: http.StatusText(status), Message: message})
}

func (l *Login) forbidden(w http.ResponseWriter, r *http.Request, message string) error {
	if !l.wantsRedirect(r) { // an API caller gets JSON, like the 401
		return l.writeJSON(w, http.StatusForbidden, map[string]string{"error": "forbidden", "error_description": message})
	}
	return l.showPage(w, r, http.StatusForbidden, "forbidden", pageData{
		Title: "Access denied", Message: message,
		Links: []pageLink{{Text: "Switch account", Href: l.PathPrefix + "login?force_logout=true"}, {Text: "Sign out", Href: l.PathPrefix + "logout"}},
	})
}
