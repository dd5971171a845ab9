package web

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/caddy-cognito/caddy-cognito/internal/provider"
	"github.com/caddy-cognito/caddy-cognito/internal/urlpolicy"
)

// Cookie names. On https they carry the __Host- prefix: the browser then
// only accepts them Secure, host-only and for Path=/, so a sibling
// subdomain cannot plant one.
const (
	SessionCookieBase = "cognito_session"
	loginCookieBase   = "cognito_login_" // + a prefix of the state
	logoutCookieBase  = "cognito_logout" // where to go after signing out
	loginCookieMaxAge = 10 * time.Minute
	maxLoginCookies   = 4 // sign-ins in flight per browser (tabs)
)

// Associated data of the sealed cookies, so one cannot pass for another.
var (
	adLoginCookie  = []byte("cognito login request")
	adLogoutCookie = []byte("cognito logout return")
)

// requestOrigin is scheme://host of the site as the browser sees it: from
// RedirectURI when configured, else the request as Caddy sees it
// (urlpolicy.SiteOrigin).
func (l *Flow) requestOrigin(r *http.Request) string {
	return urlpolicy.SiteOrigin(l.redirectURIConf, r, l.trustedProxy)
}

func (l *Flow) redirectURI(r *http.Request) string {
	if l.redirectURIConf != "" {
		return l.redirectURIConf
	}
	return l.requestOrigin(r) + l.pathPrefix + "callback"
}

// secure says whether the site is https as the browser sees it (the
// scheme of requestOrigin; urlpolicy.SiteIsHTTPS).
func (l *Flow) secure(r *http.Request) bool {
	return urlpolicy.SiteIsHTTPS(l.redirectURIConf, r, l.trustedProxy)
}

// hostPrefix makes browsers keep a cookie to this host, Secure, on path /.
const hostPrefix = "__Host-"

// CookieName adds the __Host- prefix on https.
func CookieName(base string, secure bool) string {
	if secure {
		return hostPrefix + base
	}
	return base
}

// setCookie sets (maxAge > 0) or deletes (maxAge < 0) one of our cookies,
// always HttpOnly, SameSite=Lax, Path=/, host-only, Secure on https.
func (l *Flow) setCookie(w http.ResponseWriter, r *http.Request, base, value string, maxAge time.Duration) {
	secure := l.secure(r)
	c := &http.Cookie{ //nolint:gosec // G124: HttpOnly and SameSite=Lax always; Secure exactly when the site is https (a plain-http loopback site could not keep a Secure cookie)
		Name: CookieName(base, secure), Value: value, Path: "/",
		HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode,
	}
	if maxAge < 0 {
		c.Value, c.MaxAge = "", -1
	} else if maxAge > 0 {
		c.MaxAge = int(maxAge / time.Second)
	}
	http.SetCookie(w, c)
}

// SessionCookieName is the session cookie's name on this request's site.
func (l *Flow) SessionCookieName(r *http.Request) string {
	if l.secure(r) {
		return secureSessionCookie // a constant: every signed-in request asks
	}
	return SessionCookieBase
}

const secureSessionCookie = hostPrefix + SessionCookieBase

// loginCookieName ties a login request's cookie to its state, so that
// sign-ins started in several tabs do not overwrite each other.
func loginCookieName(state string, secure bool) string {
	sum := sha256.Sum256([]byte(state))
	return CookieName(loginCookieBase+base64.RawURLEncoding.EncodeToString(sum[:9]), secure)
}

// saveLoginRequest keeps lr in a sealed cookie until the callback. Stale
// login cookies beyond maxLoginCookies are dropped.
func (l *Flow) saveLoginRequest(w http.ResponseWriter, r *http.Request, lr provider.LoginRequest) error {
	b, err := json.Marshal(lr)
	if err != nil {
		return err
	}
	secure := l.secure(r)
	prefix := CookieName(loginCookieBase, secure)
	n := 0
	for _, c := range r.Cookies() {
		if strings.HasPrefix(c.Name, prefix) {
			if n++; n >= maxLoginCookies {
				http.SetCookie(w, &http.Cookie{Name: c.Name, Path: "/", MaxAge: -1, HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode}) //nolint:gosec // G124: HttpOnly and SameSite=Lax always; Secure exactly when the site is https (a plain-http loopback site could not keep a Secure cookie)
			}
		}
	}
	http.SetCookie(w, &http.Cookie{ //nolint:gosec // G124: HttpOnly and SameSite=Lax always; Secure exactly when the site is https (a plain-http loopback site could not keep a Secure cookie)
		Name: loginCookieName(lr.State, secure), Path: "/",
		Value:  l.sealCookie(b, adLoginCookie),
		MaxAge: int(loginCookieMaxAge / time.Second), HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode,
	})
	return nil
}

// takeLoginRequest returns the login request whose state the callback
// carries, and deletes its cookie (a state is good for one callback).
func (l *Flow) takeLoginRequest(w http.ResponseWriter, r *http.Request, state string) (provider.LoginRequest, bool) {
	if state == "" || len(state) > 128 {
		return provider.LoginRequest{}, false
	}
	secure := l.secure(r)
	name := loginCookieName(state, secure)
	c, err := r.Cookie(name)
	if err != nil {
		return provider.LoginRequest{}, false
	}
	http.SetCookie(w, &http.Cookie{Name: name, Path: "/", MaxAge: -1, HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode}) //nolint:gosec // G124: HttpOnly and SameSite=Lax always; Secure exactly when the site is https (a plain-http loopback site could not keep a Secure cookie)
	b, ok := l.openCookie(c.Value, adLoginCookie)
	if !ok {
		return provider.LoginRequest{}, false
	}
	var lr provider.LoginRequest
	if json.Unmarshal(b, &lr) != nil || subtle.ConstantTimeCompare([]byte(lr.State), []byte(state)) != 1 ||
		time.Since(lr.Created) > loginCookieMaxAge {
		return provider.LoginRequest{}, false
	}
	return lr, true
}

// sealCookie seals b (AES-GCM, bound to ad) into a cookie value.
func (l *Flow) sealCookie(b, ad []byte) string {
	return base64.RawURLEncoding.EncodeToString(l.sealer.Seal(b, ad))
}

// openCookie opens what sealCookie made with the same ad.
func (l *Flow) openCookie(value string, ad []byte) ([]byte, bool) {
	sealed, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil {
		return nil, false
	}
	b, err := l.sealer.Open(sealed, ad)
	return b, err == nil
}

// FormToken derives a form's CSRF token from the session id (and what the
// form acts on): only a page that could read the HttpOnly session cookie's
// session knows it. purpose keeps the tokens of different forms apart.
func FormToken(purpose, sessionID string, more ...string) string {
	h := sha256.New()
	h.Write([]byte("cognito " + purpose + " csrf\x00" + sessionID))
	for _, m := range more {
		h.Write([]byte("\x00" + m))
	}
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// csrfToken is the logout form's token.
func csrfToken(sessionID string) string { return FormToken("logout", sessionID) }

// StripOurCookies removes the plugin's cookies (session, login and logout
// state, with or without the __Host- prefix) from the request before it
// goes upstream: the session id is a credential the upstream has no use
// for, and an upstream that logs cookies would leak it. Every signed-in
// request carries one, so this avoids allocating where it can.
func StripOurCookies(h http.Header) {
	vals := h["Cookie"]
	found := false
	for _, v := range vals {
		if strings.Contains(v, "cognito_") {
			found = true
			break
		}
	}
	if !found {
		return
	}
	var b strings.Builder
	for _, v := range vals {
		for v != "" {
			var part string
			part, v, _ = strings.Cut(v, ";")
			part = strings.TrimSpace(part)
			name, _, _ := strings.Cut(part, "=")
			name = strings.TrimPrefix(name, hostPrefix)
			if part == "" || name == SessionCookieBase || name == logoutCookieBase || strings.HasPrefix(name, loginCookieBase) {
				continue
			}
			if b.Len() > 0 {
				b.WriteString("; ")
			}
			b.WriteString(part)
		}
	}
	if b.Len() == 0 {
		delete(h, "Cookie")
		return
	}
	h["Cookie"] = []string{b.String()}
}
