package adminapi

import (
	"net/http"
	"time"

	"github.com/caddy-cognito/caddy-cognito/invitations"
	"github.com/caddy-cognito/caddy-cognito/userstore"
)

// Admin API (and CLI) operations on invitations:
//
//	GET    /cognito/invitations[?status=&email=]
//	POST   /cognito/invitations              {"email","user","roles","expires","send"}
//	GET    /cognito/invitations/{id}
//	POST   /cognito/invitations/{id}/resend   {"send"}      a new link; the old one stops working
//	POST   /cognito/invitations/{id}/revoke
//	POST   /cognito/invitations/clean        {"keep"}      remove expired, and used/revoked older than keep (default 720h)
func (o *API) invitationRoutes() map[string]route {
	return map[string]route{
		"GET /cognito/invitations":              o.withInvites(o.listInvitations),
		"POST /cognito/invitations":             o.withInvites(o.createInvitation),
		"GET /cognito/invitations/{id}":         o.withInvites(o.showInvitation),
		"POST /cognito/invitations/{id}/resend": o.withInvites(o.resendInvitation),
		"POST /cognito/invitations/{id}/revoke": o.withInvites(o.revokeInvitation),
		"POST /cognito/invitations/clean":       o.withInvites(o.cleanInvitations),
	}
}

type inviteRoute func(svc *invitations.Service, s *userstore.Store, r *http.Request, actor string) (int, any, error)

// withInvites refuses invitation operations when invitations are not
// configured, and hands the others an invitations service.
func (o *API) withInvites(op inviteRoute) route {
	return func(s *userstore.Store, r *http.Request, actor string) (int, any, error) {
		if o.invites == nil {
			return 0, nil, badRequest("invitations are not configured: add `invitations { base_url … }` to the global cognito option")
		}
		return op(invitations.New(s, nil), s, r, actor)
	}
}

// invitationAnswer is what create and resend return: the invitation, its
// link (shown only here), and whether the email went out.
type invitationAnswer struct {
	Invitation *invitations.Invitation `json:"invitation"`
	AcceptURL  string                  `json:"accept_url"`
	Sent       bool                    `json:"sent"`
	SendError  string                  `json:"send_error,omitempty"`
}

func (o *API) answerWithLink(r *http.Request, svc *invitations.Service, inv *invitations.Invitation, secret string, send bool) invitationAnswer {
	a := invitationAnswer{Invitation: inv, AcceptURL: o.invites.AcceptURL(secret)}
	if send {
		if err := o.invites.Send(r.Context(), svc, inv, secret); err != nil {
			a.SendError = err.Error()
		} else {
			a.Sent = true
			if got, err := svc.Get(r.Context(), inv.ID); err == nil {
				a.Invitation = got
			}
		}
	}
	return a
}

func (o *API) createInvitation(svc *invitations.Service, s *userstore.Store, r *http.Request, actor string) (int, any, error) {
	var req struct {
		Email   string   `json:"email"`
		User    string   `json:"user"` // id, username or email of an existing user
		Roles   []string `json:"roles"`
		Expires string   `json:"expires"` // a duration, e.g. 72h; default from config
		Send    bool     `json:"send"`
	}
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	cr := invitations.CreateRequest{Email: req.Email, Roles: req.Roles, TTL: o.invites.DefaultTTL()}
	if req.Expires != "" {
		d, err := parseDuration(req.Expires)
		if err != nil {
			return 0, nil, badRequest("expires: %v", err)
		}
		cr.TTL = d
	}
	if req.User != "" {
		u, err := s.GetUser(r.Context(), req.User)
		if err != nil {
			return 0, nil, err
		}
		cr.UserID = u.ID
	}
	inv, secret, err := svc.Create(r.Context(), actor, cr)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, o.answerWithLink(r, svc, inv, secret, req.Send), nil
}

func (o *API) listInvitations(svc *invitations.Service, _ *userstore.Store, r *http.Request, _ string) (int, any, error) {
	q := r.URL.Query()
	f := invitations.Filter{Status: invitations.Status(q.Get("status")), Email: q.Get("email"), Limit: 1000}
	switch f.Status {
	case "", invitations.Pending, invitations.Accepted, invitations.Revoked, invitations.Expired, invitations.Failed:
	default:
		return 0, nil, badRequest("status must be pending, accepted, revoked, expired or failed")
	}
	list, err := svc.List(r.Context(), f)
	if list == nil {
		list = []invitations.Invitation{}
	}
	return http.StatusOK, list, err
}

func (o *API) showInvitation(svc *invitations.Service, _ *userstore.Store, r *http.Request, _ string) (int, any, error) {
	inv, err := svc.Get(r.Context(), r.PathValue("id"))
	return http.StatusOK, inv, err
}

func (o *API) resendInvitation(svc *invitations.Service, _ *userstore.Store, r *http.Request, actor string) (int, any, error) {
	req := struct {
		Send *bool `json:"send"`
	}{}
	if r.ContentLength != 0 {
		if err := decode(r, &req); err != nil {
			return 0, nil, err
		}
	}
	send := req.Send == nil || *req.Send
	inv, secret, err := svc.Resend(r.Context(), actor, r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, o.answerWithLink(r, svc, inv, secret, send), nil
}

func (o *API) revokeInvitation(svc *invitations.Service, _ *userstore.Store, r *http.Request, actor string) (int, any, error) {
	id := r.PathValue("id")
	if err := svc.Revoke(r.Context(), actor, id); err != nil {
		return 0, nil, err
	}
	inv, err := svc.Get(r.Context(), id)
	return http.StatusOK, inv, err
}

func (o *API) cleanInvitations(svc *invitations.Service, _ *userstore.Store, r *http.Request, _ string) (int, any, error) {
	req := struct {
		Keep string `json:"keep"`
	}{}
	if r.ContentLength != 0 {
		if err := decode(r, &req); err != nil {
			return 0, nil, err
		}
	}
	keep := 30 * 24 * time.Hour
	if req.Keep != "" {
		d, err := parseDuration(req.Keep)
		if err != nil || d < 0 {
			return 0, nil, badRequest("keep must be a duration, e.g. 720h")
		}
		keep = d
	}
	n, err := svc.Clean(r.Context(), keep)
	return http.StatusOK, map[string]int{"removed": n}, err
}
