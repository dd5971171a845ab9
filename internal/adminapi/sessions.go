package adminapi

import (
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-cognito/caddy-cognito/userstore"
)

// Admin API (and CLI) operations on a user's browser sessions, and the
// audit log:
//
//	GET    /cognito/users/{ref}/sessions   the live sessions (no secrets)
//	DELETE /cognito/users/{ref}/sessions   sign the user out everywhere
//	GET    /cognito/audit[?target=&limit=] the audit log, newest first
func (o *API) sessionRoutes() map[string]route {
	return map[string]route{
		"GET /cognito/users/{ref}/sessions":    o.listSessions,
		"DELETE /cognito/users/{ref}/sessions": o.endSessions,
		"GET /cognito/audit":                   o.listAudit,
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

func (o *API) listSessions(s *userstore.Store, r *http.Request, _ string) (int, any, error) {
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

func (o *API) endSessions(s *userstore.Store, r *http.Request, actor string) (int, any, error) {
	u, err := s.GetUser(r.Context(), r.PathValue("ref"))
	if err != nil {
		return 0, nil, err
	}
	n, err := s.DeleteUserSessions(r.Context(), actor, u.ID)
	if err == nil {
		o.logger.Info("signed out everywhere", zap.String("user", u.ID), zap.Int("sessions", n), zap.String("actor", actor))
	}
	return http.StatusOK, map[string]int{"ended": n}, err
}

// GET /cognito/audit[?target=&limit=]: the audit log, newest first (target:
// a user id, an invitation id…; limit default 100, at most 1000).
func (o *API) listAudit(s *userstore.Store, r *http.Request, _ string) (int, any, error) {
	q := r.URL.Query()
	limit := 100
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return 0, nil, badRequest("limit must be a number from 1 to 1000")
		}
		limit = n
	}
	var events []userstore.AuditEvent
	var err error
	if target := q.Get("target"); target != "" {
		events, err = s.AuditFor(r.Context(), target, limit)
	} else {
		events, err = s.Audit(r.Context(), limit)
	}
	if events == nil {
		events = []userstore.AuditEvent{}
	}
	return http.StatusOK, events, err
}
