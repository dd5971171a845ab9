package caddycognito

import (
	"fmt"
	"strings"
)

// Requirement is one authorization rule: the identity must hold at least
// one of the listed values. Set exactly one of the fields. A handler's
// requirements must all be met.
type Requirement struct {
	// Scopes: at least one of these OAuth scopes (access tokens only).
	Scopes []string `json:"scopes,omitempty"`
	// Groups: membership in at least one of these Cognito groups.
	Groups []string `json:"groups,omitempty"`
	// Roles: at least one of these local roles (needs `users mapped`).
	Roles []string `json:"roles,omitempty"`
}

func (r Requirement) validate() error {
	set := 0
	for _, l := range [][]string{r.Scopes, r.Groups, r.Roles} {
		if len(l) > 0 {
			set++
		}
		for _, v := range l {
			if strings.TrimSpace(v) == "" {
				return fmt.Errorf("requirement with an empty value")
			}
		}
	}
	if set != 1 {
		return fmt.Errorf("a requirement needs exactly one of scopes, groups or roles, with at least one value")
	}
	return nil
}

// unmet returns a client-safe description of the first requirement the
// identity fails, and the scope list to advertise in the challenge; it
// returns "" when every requirement is met.
func unmet(reqs []Requirement, id *Identity) (reason, scope string) {
	for _, r := range reqs {
		switch {
		case len(r.Scopes) > 0 && !id.HasAnyScope(r.Scopes):
			return "requires scope " + strings.Join(r.Scopes, " or "), strings.Join(r.Scopes, " ")
		case len(r.Groups) > 0 && !id.HasAnyGroup(r.Groups):
			// group names stay private: they describe the organisation
			return "not in a required group", ""
		case len(r.Roles) > 0 && !id.HasAnyRole(r.Roles):
			return "lacks a required role", ""
		}
	}
	return "", ""
}

func needsRoles(reqs []Requirement) bool {
	for _, r := range reqs {
		if len(r.Roles) > 0 {
			return true
		}
	}
	return false
}
