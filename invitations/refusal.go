package invitations

import (
	"errors"
	"net/http"

	"github.com/caddy-cognito/caddy-cognito/userstore"
)

// Refusal maps an acceptance error to a message key and status;
// "" for errors that are not the invitation's fault.
func Refusal(err error) (string, int) {
	switch {
	case errors.Is(err, ErrUnknown):
		return "invalid", http.StatusNotFound
	case errors.Is(err, ErrExpired):
		return "expired", http.StatusGone
	case errors.Is(err, ErrUsed):
		return "used", http.StatusConflict
	case errors.Is(err, ErrRevoked):
		return "revoked", http.StatusGone
	case errors.Is(err, ErrFailed):
		return "failed", http.StatusGone
	case errors.Is(err, ErrEmailMismatch):
		return "email_mismatch", http.StatusForbidden
	case errors.Is(err, ErrLinkedElsewhere):
		return "linked_elsewhere", http.StatusConflict
	case errors.Is(err, userstore.ErrConflict):
		return "conflict", http.StatusConflict
	}
	return "", 0
}
