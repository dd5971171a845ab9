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
	// Claim: a claim of the token (for `cognito_login`, of the session's
	// ID token) with one of the listed values.
	Claim *ClaimRequirement `json:"claim,omitempty"`
}

// ClaimRequirement is met when the claim Name is a string equal to one of
// Values, or a list holding one of them. Numbers and booleans compare in
// their JSON form (`true`, `42`). A missing claim meets nothing.
type ClaimRequirement struct {
	// Name is the claim, e.g. `custom:tenant` or `cognito:groups`.
	Name string `json:"name,omitempty"`
	// Values lists the accepted values; at least one.
	Values []string `json:"values,omitempty"`
}

func (r Requirement) validate() error {
	lists := [][]string{r.Scopes, r.Groups, r.Roles}
	if r.Claim != nil {
		if strings.TrimSpace(r.Claim.Name) == "" {
			return fmt.Errorf("a claim requirement needs a claim name")
		}
		if len(r.Claim.Values) == 0 {
			return fmt.Errorf("claim requirement %q needs at least one value", r.Claim.Name)
		}
		lists = append(lists, r.Claim.Values)
	}
	set := 0
	for _, l := range lists {
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
		return fmt.Errorf("a requirement needs exactly one of scopes, groups, roles or claim, with at least one value")
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
		case r.Claim != nil && !id.ClaimHasAny(r.Claim.Name, r.Claim.Values):
			// like groups, claim names and values may describe the organisation
			return "lacks a required claim", ""
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
