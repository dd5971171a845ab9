package web

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
var pageNames = []string{"forbidden", "refused", "error", "signed_out", "logout", "choose"}

// PageData is what a page template gets. html/template escapes every
// value for its context, so nothing from a request or a token can inject
// markup.
type PageData struct {
	Title, Message string
	Site           string // the request's host
	// Action, CSRF, Next and Button make a POST form (the logout page).
	Action, CSRF, Next, Button string
	Links                      []PageLink
	// Choices are the sign-in chooser's buttons, one per pool.
	Choices []PageLink
}

// PageLink is a link (or, first on a page, its primary button).
type PageLink struct{ Text, Href string }

// Pages holds a parsed template per page name.
type Pages struct{ pages map[string]*template.Template }

// Template returns the page called name (one of the built-in names).
func (p *Pages) Template(name string) *template.Template { return p.pages[name] }

// LoadPages parses the built-in page and the operator's replacements.
func LoadPages(files map[string]string) (*Pages, error) {
	builtin, err := template.ParseFS(builtinPages, "pages/page.html")
	if err != nil {
		return nil, err
	}
	ps := &Pages{pages: map[string]*template.Template{}}
	for _, name := range pageNames {
		ps.pages[name] = builtin
	}
	for name, file := range files {
		if _, ok := ps.pages[name]; !ok {
			return nil, fmt.Errorf("page %q: not one of %s", name, strings.Join(pageNames, ", "))
		}
		src, err := os.ReadFile(file) //nolint:gosec // G304: a template file the operator configured
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
func (l *Flow) showPage(w http.ResponseWriter, r *http.Request, status int, name string, d PageData) error {
	return RenderPage(w, r, l.pages.pages[name], status, d)
}

// RenderPage renders a page template. It is rendered into a buffer first,
// so a failing operator template gives a plain 500, never half a page.
func RenderPage(w http.ResponseWriter, r *http.Request, t *template.Template, status int, d PageData) error {
	d.Site = r.Host
	var buf bytes.Buffer
	if err := t.Execute(&buf, d); err != nil {
		return fmt.Errorf("page %q: %w", t.Name(), err)
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	// Page URLs can hold an invitation's secret or a next URL: they are
	// never sent on as Referer, to the hosted UI, another site, or this
	// site's own access log. (No check here relies on Referer or Origin;
	// forms carry their own tokens.)
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self' https: http:; frame-ancestors 'none'; base-uri 'none'")
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}

// ShowError shows the error page with message.
func (l *Flow) ShowError(w http.ResponseWriter, r *http.Request, status int, message string) error {
	return l.showPage(w, r, status, "error", PageData{Title: http.StatusText(status), Message: message})
}

// Forbidden shows the 403 page (403 JSON to a script) with message.
func (l *Flow) Forbidden(w http.ResponseWriter, r *http.Request, message string) error {
	return l.forbidden(w, r, r.Method, message)
}

// forbidden is Forbidden for a request made with method.
func (l *Flow) forbidden(w http.ResponseWriter, r *http.Request, method, message string) error {
	if !wantsRedirect(r, method, l.unauthenticatedMode) { // an API caller gets JSON, like the 401
		return WriteJSON(w, http.StatusForbidden, map[string]string{"error": "forbidden", "error_description": message})
	}
	return l.showPage(w, r, http.StatusForbidden, "forbidden", PageData{
		Title: "Access denied", Message: message,
		Links: []PageLink{{Text: "Switch account", Href: l.pathPrefix + "login?force_logout=true"}, {Text: "Sign out", Href: l.pathPrefix + "logout"}},
	})
}
