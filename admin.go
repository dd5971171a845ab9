package caddycognito

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-cognito/caddy-cognito/userstore"
)

func init() {
	caddy.RegisterModule(adminAPI{})
}

// adminAPI serves the identity store on Caddy's admin endpoint under
// /cognito/, JSON in and out. The `caddy cognito` CLI runs these same
// handlers in-process against the store file, so both always agree.
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
//	GET|DELETE /cognito/users/{ref}/sessions  see admin_sessions.go
//	…/cognito/invitations                  see invite_admin.go
type adminAPI struct {
	ops *operations
}

// CaddyModule returns the Caddy module information.
func (adminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.cognito",
		New: func() caddy.Module { return new(adminAPI) },
	}
}

// Provision finds the cognito app, if the running config has one.
func (a *adminAPI) Provision(ctx caddy.Context) error {
	appIface, err := ctx.AppIfConfigured("cognito")
	if err != nil {
		return nil // no cognito app: the routes answer 404
	}
	app := appIface.(*App)
	issuers := make(map[string]string, len(app.Pools))
	for name, p := range app.Pools {
		issuers[name] = p.issuer
	}
	a.ops = &operations{issuers: issuers, store: app.UserStore, invites: app.invites}
	return nil
}

// Routes implements caddy.AdminRouter.
func (a *adminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{
		Pattern: "/cognito/",
		Handler: caddy.AdminHandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			if a.ops == nil {
				return caddy.APIError{HTTPStatus: http.StatusNotFound, Err: errors.New("the cognito app is not configured")}
			}
			return a.ops.serve(w, r, "admin-api")
		}),
	}}
}

// operations implements the admin routes over one store.
type operations struct {
	issuers map[string]string // pool name → issuer
	store   func() (*userstore.Store, error)
	invites *inviteSetup // nil: invitations not configured
}

// route is one admin operation: it reads the request and returns what to
// answer with (a status and a JSON-able value) or an error.
type route func(s *userstore.Store, r *http.Request, actor string) (int, any, error)

func (o *operations) routes() map[string]route {
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

// serve dispatches r to its operation and writes the JSON answer.
func (o *operations) serve(w http.ResponseWriter, r *http.Request, actor string) error {
	if err := requireJSON(r); err != nil {
		return err
	}
	mux := http.NewServeMux()
	var status int
	var result any
	var opErr error
	for pattern, op := range o.routes() {
		mux.HandleFunc(pattern, func(_ http.ResponseWriter, r *http.Request) {
			s, err := o.store()
			if err != nil {
				opErr = fmt.Errorf("%w: %v", userstore.ErrUnavailable, err)
				return
			}
			status, result, opErr = op(s, r, actor)
		})
	}
	if _, pattern := mux.Handler(r); pattern == "" {
		return caddy.APIError{HTTPStatus: http.StatusNotFound, Err: fmt.Errorf("no such operation: %s %s", r.Method, r.URL.Path)}
	}
	mux.ServeHTTP(w, r)
	if opErr != nil {
		return caddy.APIError{HTTPStatus: statusFor(opErr), Err: opErr}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(result)
}

// statusFor maps store errors to HTTP statuses (and, in the CLI, exit codes).
func statusFor(err error) int {
	switch {
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
		return caddy.APIError{HTTPStatus: http.StatusUnsupportedMediaType,
			Err: fmt.Errorf("%s %s needs Content-Type: application/json", r.Method, r.URL.Path)}
	}
	return nil
}

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
func (o *operations) issuerOf(pool, issuer string) (string, error) {
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

func (o *operations) listUsers(s *userstore.Store, r *http.Request, _ string) (int, any, error) {
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

type userRequest struct {
	Username   string   `json:"username"`
	Email      string   `json:"email"`
	GivenName  string   `json:"given_name"`
	FamilyName string   `json:"family_name"`
	Roles      []string `json:"roles"`
	Disabled   bool     `json:"disabled"`
}

func (o *operations) createUser(s *userstore.Store, r *http.Request, actor string) (int, any, error) {
	var req userRequest
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

func (o *operations) showUser(s *userstore.Store, r *http.Request, _ string) (int, any, error) {
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

func (o *operations) setActive(active bool) route {
	return func(s *userstore.Store, r *http.Request, actor string) (int, any, error) {
		u, err := s.GetUser(r.Context(), r.PathValue("ref"))
		if err != nil {
			return 0, nil, err
		}
		return afterChange(s, r, u.ID, s.SetActive(r.Context(), actor, u.ID, active))
	}
}

func (o *operations) changeRoles(grant bool) route {
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

func (o *operations) linkIdentity(s *userstore.Store, r *http.Request, actor string) (int, any, error) {
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

func (o *operations) listServiceAccounts(s *userstore.Store, r *http.Request, _ string) (int, any, error) {
	sas, err := s.ListServiceAccounts(r.Context(), r.URL.Query().Get("issuer"))
	if sas == nil {
		sas = []userstore.ServiceAccount{}
	}
	return http.StatusOK, sas, err
}

func (o *operations) addServiceAccount(s *userstore.Store, r *http.Request, actor string) (int, any, error) {
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

func (o *operations) removeServiceAccount(s *userstore.Store, r *http.Request, actor string) (int, any, error) {
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

// Interface guards
var (
	_ caddy.AdminRouter = (*adminAPI)(nil)
	_ caddy.Provisioner = (*adminAPI)(nil)
)
