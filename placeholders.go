package caddycognito

import (
	"net/http"
	"strings"

	"github.com/caddy-cognito/caddy-cognito/internal/identity"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// Identity is the verified caller of one request: who Cognito says they
// are, and (when the identity store maps them) who they are on this site.
// Every handler of the plugin ends by producing one; it reaches the
// upstream as the placeholders below and as headers.
type Identity = identity.Identity

// DefaultHeaderPrefix starts the name of every identity header sent upstream.
const DefaultHeaderPrefix = identity.DefaultHeaderPrefix

// Placeholder names; {http.auth.user.id} is the one Caddy's access log
// records as user_id.
const (
	placeholderUser       = "http.auth.user."
	placeholderErrorCode  = "http.auth.cognito.error"
	placeholderErrorDescr = "http.auth.cognito.error_description"
)

// setPlaceholders exposes the identity as {http.auth.user.*}. Values are
// raw (not header-encoded): placeholders go to logs and templates, which
// do their own escaping. Lists are joined with commas.
//
// The values are computed only when something asks (the access log asks
// for {http.auth.user.id}), through one provider per request: setting ten
// static entries would grow the replacer's map on every request. When a
// second handler of the plugin runs in the same request, the provider is
// re-pointed at the newer identity.
//
// It returns the slots for this request's identity header values (see
// identity.ValueSlots), kept in the same allocation as the provider's
// state, or nil after the first handler of the request: the first
// handler's headers may still be in use.
func setPlaceholders(r *http.Request, repl *caddy.Replacer, id *Identity) *identity.ValueSlots {
	// The holder lives in the request's vars: a map lookup, where
	// repl.Get would walk every HTTP placeholder provider.
	vars, _ := r.Context().Value(caddyhttp.VarsCtxKey).(map[string]any)
	if h, ok := vars[identityVar].(*identityPlaceholders); ok {
		h.id = id
		return nil
	}
	h := &identityPlaceholders{id: id}
	if vars != nil {
		vars[identityVar] = h
	}
	repl.Map(h.get)
	return &h.slots
}

// identityVar names the request variable holding identityPlaceholders.
const identityVar = "cognito.identity"

type identityPlaceholders struct {
	id    *Identity
	slots identity.ValueSlots
}

// String keeps the holder from rendering the identity if someone uses
// {http.vars.cognito.identity} directly.
func (*identityPlaceholders) String() string { return "" }

func (h *identityPlaceholders) get(key string) (any, bool) {
	name, ok := strings.CutPrefix(key, placeholderUser)
	if !ok {
		return nil, false
	}
	id := h.id
	switch name {
	case "id":
		if id.UserID != "" {
			return id.UserID, true
		}
		return id.Subject, true
	case "sub":
		return id.Subject, true
	case "username":
		return id.Username, true
	case "email":
		return id.Email, true
	case "groups":
		return strings.Join(id.Groups, ","), true
	case "scopes":
		return strings.Join(id.Scopes, ","), true
	case "roles":
		return strings.Join(id.Roles, ","), true
	case "client_id":
		return id.ClientID, true
	case "pool":
		return id.Pool, true
	case "token_use":
		return id.TokenUse, true
	}
	if claim, ok := strings.CutPrefix(name, "claim."); ok {
		// A claim the token lacks is empty, like any other unset field.
		v, _ := id.Claim(claim)
		return v, true
	}
	return nil, false
}
