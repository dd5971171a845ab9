// Package adminapi holds the identity store's operations (users, roles,
// identities, service accounts, sessions, invitations, the audit log) as
// one HTTP handler, built once; Caddy's admin endpoint serves it under
// /cognito/ and the `caddy cognito` CLI runs the same operations in-process.
package adminapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/caddy-cognito/caddy-cognito/invitations"
	"go.uber.org/zap"

	"github.com/caddy-cognito/caddy-cognito/userstore"
)

// Routes (JSON in and out):
//
//	GET    /cognito/users[?q=&role=&active=true|false]
//	POST   /cognito/users                       {"username","email","given_name","family_name","roles","disabled"}
//	GET    /cognito/users/{ref}                 ref: id, username or email
//	POST   /cognito/users/{ref}/disable | enable
//	POST   /cognito/users/{ref}/roles           {"roles":[…]}   grant
//	DELETE /cognito/users/{ref}/roles           {"roles":[…]}   revoke
//	POST   /cognito/users/{ref}/identities      {"pool"|"issuer","sub","provider"}
//	GET    /cognito/service-accounts
//	POST   /cognito/service-accounts            {"pool"|"issuer","client_id","username"|"user_id"}
//	DELETE /cognito/service-accounts?pool=|issuer=&client_id=
//	GET|DELETE /cognito/users/{ref}/sessions  see sessions.go
//	…/cognito/invitations                  see invitations.go

// Invites is what the invitation operations need of the invitations
// configuration: nil in Config means invitations are not configured.
type Invites interface {
	// DefaultTTL is how long a new invitation is valid unless told.
	DefaultTTL() time.Duration
	// AcceptURL is the link that accepts the invitation with secret.
	AcceptURL(secret string) string
	// Send mails the invitation's link.
	Send(ctx context.Context, svc *invitations.Service, inv *invitations.Invitation, secret string) error
}

// Config is what the operations work on.
type Config struct {
	// Issuers maps pool names to their issuers, to resolve `pool`.
	Issuers map[string]string
	// Store opens (or returns the shared) identity store.
	Store func() (*userstore.Store, error)
	// Invites is nil when invitations are not configured.
	Invites Invites
	// Logger receives the security events of the operations (a user
	// signed out everywhere); nil logs nothing.
	Logger *zap.Logger
}

// API is the admin operations behind one ServeMux, built once.
type API struct {
	issuers map[string]string
	store   func() (*userstore.Store, error)
	invites Invites
	mux     *http.ServeMux
	logger  *zap.Logger
}

// New builds the API.
func New(cfg Config) *API {
	a := &API{issuers: cfg.Issuers, store: cfg.Store, invites: cfg.Invites, mux: http.NewServeMux(), logger: cfg.Logger}
	if a.logger == nil {
		a.logger = zap.NewNop()
	}
	for pattern, op := range a.routes() {
		a.mux.HandleFunc(pattern, func(_ http.ResponseWriter, r *http.Request) {
			c := r.Context().Value(callKey{}).(*call)
			s, err := a.store()
			if err != nil {
				// Only the class ErrUnavailable may decide the status (503),
				// not whatever class the cause carries.
				c.err = fmt.Errorf("%w: %v", userstore.ErrUnavailable, err) //nolint:errorlint // see above
				return
			}
			c.status, c.result, c.err = op(s, r, c.actor)
		})
	}
	return a
}

// call carries one operation's outcome out of the mux.
type call struct {
	actor  string
	status int
	result any
	err    error
}

type callKey struct{}

// ErrNoRoute is the error for a method and path no operation has.
var ErrNoRoute = errors.New("no such operation")

// Do runs the operation r names, on behalf of actor (written to the audit
// log), and returns the status and the JSON-able answer, or an error for
// StatusFor to classify.
func (o *API) Do(r *http.Request, actor string) (int, any, error) {
	if err := requireJSON(r); err != nil {
		return 0, nil, err
	}
	if _, pattern := o.mux.Handler(r); pattern == "" {
		return 0, nil, fmt.Errorf("%w: %s %s", ErrNoRoute, r.Method, r.URL.Path)
	}
	c := &call{actor: actor}
	o.mux.ServeHTTP(nil, r.WithContext(context.WithValue(r.Context(), callKey{}, c)))
	if c.err != nil {
		return 0, nil, c.err
	}
	return c.status, c.result, nil
}

// route is one admin operation: it reads the request and returns what to
// answer with (a status and a JSON-able value) or an error.
type route func(s *userstore.Store, r *http.Request, actor string) (int, any, error)

func (o *API) routes() map[string]route {
	routes := map[string]route{
		"GET /cognito/users":                   o.listUsers,
		"POST /cognito/users":                  o.createUser,
		"GET /cognito/users/{ref}":             o.showUser,
		"POST /cognito/users/{ref}/disable":    o.setActive(false),
		"POST /cognito/users/{ref}/enable":     o.setActive(true),
		"POST /cognito/users/{ref}/roles":      o.changeRoles(true),
		"DELETE /cognito/users/{ref}/roles":    o.changeRoles(false),
		"POST /cognito/users/{ref}/identities": o.linkIdentity,
		"GET /cognito/service-accounts":        o.listServiceAccounts,
		"POST /cognito/service-accounts":       o.addServiceAccount,
		"DELETE /cognito/service-accounts":     o.removeServiceAccount,
	}
	for _, more := range []map[string]route{o.sessionRoutes(), o.invitationRoutes()} {
		for pattern, op := range more {
			routes[pattern] = op
		}
	}
	return routes
}

// StatusFor maps an operation's error to an HTTP status (and, in the CLI,
// an exit code).
func StatusFor(err error) int {
	var me *mediaTypeError
	switch {
	case errors.As(err, &me):
		return http.StatusUnsupportedMediaType
	case errors.Is(err, ErrNoRoute):
		return http.StatusNotFound
	case errors.Is(err, userstore.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, userstore.ErrConflict):
		return http.StatusConflict
	case errors.Is(err, userstore.ErrInvalid), errors.Is(err, errBadRequest):
		return http.StatusBadRequest
	case errors.Is(err, userstore.ErrUnavailable):
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

var errBadRequest = errors.New("bad request")

func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errBadRequest, fmt.Sprintf(format, args...))
}

// requireJSON refuses a change (any method but GET and HEAD) that does not
// say its body is JSON, as Caddy's own /config does: a browser cannot send
// that type across origins without asking first, so no web page can drive
// the admin API with a plain form.
func requireJSON(r *http.Request) error {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return nil
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return &mediaTypeError{r.Method + " " + r.URL.Path}
	}
	return nil
}

// mediaTypeError is a change that did not say its body is JSON.
type mediaTypeError struct{ op string }

func (e *mediaTypeError) Error() string { return e.op + " needs Content-Type: application/json" }

// decode reads a JSON body into v, refusing unknown fields so that a typo
// is an error rather than a silently ignored setting.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("invalid JSON body: %v", err)
	}
	return nil
}

// issuerOf resolves a pool name or an explicit issuer.
func (o *API) issuerOf(pool, issuer string) (string, error) {
	switch {
	case pool != "" && issuer != "":
		return "", badRequest("give pool or issuer, not both")
	case issuer != "":
		return issuer, nil
	case pool != "":
		if iss, ok := o.issuers[pool]; ok {
			return iss, nil
		}
		return "", badRequest("no pool named %q is configured", pool)
	case len(o.issuers) == 1:
		for _, iss := range o.issuers {
			return iss, nil
		}
	}
	return "", badRequest("name the pool (or the issuer)")
}

func (o *API) listUsers(s *userstore.Store, r *http.Request, _ string) (int, any, error) {
	q := r.URL.Query()
	f := userstore.UserFilter{Query: q.Get("q"), Role: q.Get("role"), Limit: 1000}
	switch q.Get("active") {
	case "":
	case "true", "false":
		active := q.Get("active") == "true"
		f.Active = &active
	default:
		return 0, nil, badRequest("active must be true or false")
	}
	users, err := s.ListUsers(r.Context(), f)
	if users == nil {
		users = []userstore.User{}
	}
	return http.StatusOK, users, err
}

// UserRequest is the body of POST /cognito/users.
type UserRequest struct {
	Username   string   `json:"username"`
	Email      string   `json:"email"`
	GivenName  string   `json:"given_name"`
	FamilyName string   `json:"family_name"`
	Roles      []string `json:"roles"`
	Disabled   bool     `json:"disabled"`
}

func (o *API) createUser(s *userstore.Store, r *http.Request, actor string) (int, any, error) {
	var req UserRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	u, err := s.CreateUser(r.Context(), actor, userstore.NewUser{
		Username: req.Username, Email: req.Email, GivenName: req.GivenName,
		FamilyName: req.FamilyName, Roles: req.Roles, Disabled: req.Disabled,
	})
	return http.StatusCreated, u, err
}

// userDetail is a user with the identities linked to it.
type userDetail struct {
	*userstore.User
	Identities []userstore.Identity `json:"identities"`
}

func (o *API) showUser(s *userstore.Store, r *http.Request, _ string) (int, any, error) {
	u, err := s.GetUser(r.Context(), r.PathValue("ref"))
	if err != nil {
		return 0, nil, err
	}
	ids, err := s.ListIdentities(r.Context(), u.ID)
	if ids == nil {
		ids = []userstore.Identity{}
	}
	return http.StatusOK, userDetail{User: u, Identities: ids}, err
}

// afterChange answers a mutation with the user as it now is.
func afterChange(s *userstore.Store, r *http.Request, userID string, err error) (int, any, error) {
	if err != nil {
		return 0, nil, err
	}
	u, err := s.GetUserByID(r.Context(), userID)
	return http.StatusOK, u, err
}

func (o *API) setActive(active bool) route {
	return func(s *userstore.Store, r *http.Request, actor string) (int, any, error) {
		u, err := s.GetUser(r.Context(), r.PathValue("ref"))
		if err != nil {
			return 0, nil, err
		}
		return afterChange(s, r, u.ID, s.SetActive(r.Context(), actor, u.ID, active))
	}
}

func (o *API) changeRoles(grant bool) route {
	return func(s *userstore.Store, r *http.Request, actor string) (int, any, error) {
		var req struct {
			Roles []string `json:"roles"`
		}
		if err := decode(r, &req); err != nil {
			return 0, nil, err
		}
		if len(req.Roles) == 0 {
			return 0, nil, badRequest("roles is empty")
		}
		u, err := s.GetUser(r.Context(), r.PathValue("ref"))
		if err != nil {
			return 0, nil, err
		}
		change := s.RevokeRoles
		if grant {
			change = s.GrantRoles
		}
		return afterChange(s, r, u.ID, change(r.Context(), actor, u.ID, req.Roles...))
	}
}

func (o *API) linkIdentity(s *userstore.Store, r *http.Request, actor string) (int, any, error) {
	var req struct {
		Pool     string `json:"pool"`
		Issuer   string `json:"issuer"`
		Sub      string `json:"sub"`
		Provider string `json:"provider"`
	}
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	issuer, err := o.issuerOf(req.Pool, req.Issuer)
	if err != nil {
		return 0, nil, err
	}
	u, err := s.GetUser(r.Context(), r.PathValue("ref"))
	if err != nil {
		return 0, nil, err
	}
	if err := s.LinkIdentity(r.Context(), actor, u.ID, issuer, strings.TrimSpace(req.Sub), req.Provider); err != nil {
		return 0, nil, err
	}
	return o.showUser(s, r, actor)
}

func (o *API) listServiceAccounts(s *userstore.Store, r *http.Request, _ string) (int, any, error) {
	sas, err := s.ListServiceAccounts(r.Context(), r.URL.Query().Get("issuer"))
	if sas == nil {
		sas = []userstore.ServiceAccount{}
	}
	return http.StatusOK, sas, err
}

func (o *API) addServiceAccount(s *userstore.Store, r *http.Request, actor string) (int, any, error) {
	var req struct {
		Pool     string   `json:"pool"`
		Issuer   string   `json:"issuer"`
		ClientID string   `json:"client_id"`
		Username string   `json:"username"`
		UserID   string   `json:"user_id"`
		Roles    []string `json:"roles"`
	}
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	issuer, err := o.issuerOf(req.Pool, req.Issuer)
	if err != nil {
		return 0, nil, err
	}
	nsa := userstore.NewServiceAccount{Issuer: issuer, ClientID: req.ClientID, UserID: req.UserID}
	switch {
	case req.UserID != "" && req.Username != "":
		return 0, nil, badRequest("give username (a new user) or user_id (an existing one), not both")
	case req.UserID == "":
		if req.Username == "" {
			req.Username = "service:" + req.ClientID
		}
		nsa.User = &userstore.NewUser{Username: req.Username, Roles: req.Roles}
	}
	sa, err := s.AddServiceAccount(r.Context(), actor, nsa)
	return http.StatusCreated, sa, err
}

func (o *API) removeServiceAccount(s *userstore.Store, r *http.Request, actor string) (int, any, error) {
	q := r.URL.Query()
	issuer, err := o.issuerOf(q.Get("pool"), q.Get("issuer"))
	if err != nil {
		return 0, nil, err
	}
	if q.Get("client_id") == "" {
		return 0, nil, badRequest("client_id is required")
	}
	err = s.RemoveServiceAccount(r.Context(), actor, issuer, q.Get("client_id"))
	return http.StatusOK, map[string]string{"removed": q.Get("client_id")}, err
}

// parseDuration reads a duration as Caddy's config does: Go's form plus
// whole days (`30d`, `1d12h`), so the CLI and the API read `expires` and
// `keep` like the Caddyfile.
func parseDuration(s string) (time.Duration, error) {
	var total time.Duration
	if i := strings.IndexByte(s, 'd'); i > 0 {
		var days int
		if _, err := fmt.Sscanf(s[:i], "%d", &days); err != nil || fmt.Sprint(days) != s[:i] || days < 0 || days > 36500 {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		total, s = time.Duration(days)*24*time.Hour, s[i+1:]
		if s == "" {
			return total, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, err
	}
	return total + d, nil
}
