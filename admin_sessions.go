package caddycognito

import (
	"net/http"
	"time"

	"github.com/caddy-cognito/caddy-cognito/userstore"
)

// Admin API (and CLI) operations on a user's browser sessions:
//
//	GET    /cognito/users/{ref}/sessions   the live sessions (no secrets)
//	DELETE /cognito/users/{ref}/sessions   sign the user out everywhere
func (o *operations) sessionRoutes() map[string]route {
	return map[string]route{
		"GET /cognito/users/{ref}/sessions":    o.listSessions,
		"DELETE /cognito/users/{ref}/sessions": o.endSessions,
	}
}

// sessionInfo is what a listing shows of a session: never its id hash or
// tokens.
type sessionInfo struct {
	CreatedAt         time.Time `json:"created_at"`
	LastSeenAt        time.Time `json:"last_seen_at"`
	IdleExpiresAt     time.Time `json:"idle_expires_at"`
	AbsoluteExpiresAt time.Time `json:"absolute_expires_at"`
	Issuer            string    `json:"issuer"`
	Sub               string    `json:"sub"`
	UserAgent         string    `json:"user_agent"`
	RemoteIP          string    `json:"remote_ip"`
}

func (o *operations) listSessions(s *userstore.Store, r *http.Request, _ string) (int, any, error) {
	u, err := s.GetUser(r.Context(), r.PathValue("ref"))
	if err != nil {
		return 0, nil, err
	}
	list, err := s.ListUserSessions(r.Context(), u.ID)
	out := make([]sessionInfo, 0, len(list))
	for _, x := range list {
		out = append(out, sessionInfo{
			CreatedAt: x.CreatedAt, LastSeenAt: x.LastSeenAt, IdleExpiresAt: x.IdleExpiresAt,
			AbsoluteExpiresAt: x.AbsoluteExpiresAt, Issuer: x.Issuer, Sub: x.Sub, UserAgent: x.UserAgent, RemoteIP: x.RemoteIP,
		})
	}
	return http.StatusOK, out, err
}

func (o *operations) endSessions(s *userstore.Store, r *http.Request, actor string) (int, any, error) {
	u, err := s.GetUser(r.Context(), r.PathValue("ref"))
	if err != nil {
		return 0, nil, err
	}
	n, err := s.DeleteUserSessions(r.Context(), actor, u.ID)
	return http.StatusOK, map[string]int{"ended": n}, err
}
