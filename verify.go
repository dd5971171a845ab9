package caddycognito

import (
	"errors"
	"net/http"

	"go.uber.org/zap"

	"github.com/caddy-cognito/caddy-cognito/internal/session"
)

// verifyEndpoint is the forward-auth endpoint under cognito_login's
// path_prefix.
const verifyEndpoint = "verify"

// serveVerify answers a forward-auth proxy (Caddy's forward_auth, nginx
// auth_request, Traefik forwardAuth) about the request it holds, whose
// cookies it passes on: 200 with the identity headers when the session is
// live and meets every requirement (the proxy copies them to its
// upstream), else what the site itself would answer: a 302 to sign in or
// 401 (see web.Flow.VerifyAskToSignIn), or 403.
//
// It is an endpoint of cognito_login, not a handler of its own, because it
// needs everything the handler has: the same sessions, cookies, pools,
// sign-in URL, return policy, requirements and headers.
func (l *Login) serveVerify(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return l.flow.ShowError(w, r, http.StatusMethodNotAllowed, "The verify endpoint takes GET requests from a proxy.")
	}
	s, err := l.flow.Session(r)
	switch {
	case errors.Is(err, session.ErrNoSession):
		return l.flow.VerifyAskToSignIn(w, r)
	case err != nil:
		l.logger.Error("session check failed", zap.Error(err))
		return l.flow.ShowError(w, r, http.StatusServiceUnavailable, "Sign-in is temporarily unavailable. Please try again shortly.")
	}
	id := s.Identity()
	slots := setPlaceholders(r, replacerOf(r), id)
	if reason, _ := unmet(l.Require, id); reason != "" {
		l.logger.Debug("signed-in user refused", zap.String("user", id.UserID), zap.String("reason", reason))
		return l.flow.VerifyForbidden(w, r, "You are signed in, but your account may not use this page.")
	}
	token, err := signedAssertion(r, l.signer, id)
	if err != nil {
		return err
	}
	h := w.Header()
	l.headers.SetValues(h, s.Headers(), token, slots)
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	return nil
}
