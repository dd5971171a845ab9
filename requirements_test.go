package caddycognito

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestClaimRequirement: `require claim` over a string claim, a list claim
// (cognito:groups), JSON numbers and booleans, a missing claim, and two
// lines that must both hold.
func TestClaimRequirement(t *testing.T) {
	claims := json.RawMessage(`{"custom:tenant":"acme","cognito:groups":["staff","Straße,ops"],
		"custom:level":3,"email_verified":true,"custom:empty":""}`)
	claim := func(name string, vals ...string) Requirement {
		return Requirement{Claim: &ClaimRequirement{Name: name, Values: vals}}
	}
	for _, c := range []struct {
		what string
		reqs []Requirement
		pass bool
	}{
		{"string claim, equal", []Requirement{claim("custom:tenant", "acme")}, true},
		{"string claim, one of several", []Requirement{claim("custom:tenant", "globex", "acme")}, true},
		{"string claim, other value", []Requirement{claim("custom:tenant", "globex")}, false},
		{"string claim is not split on commas", []Requirement{claim("cognito:groups", "Straße")}, false},
		{"string claim compares exactly", []Requirement{claim("custom:tenant", "ACME")}, false},
		{"list claim holds the value", []Requirement{claim("cognito:groups", "staff")}, true},
		{"list claim item with a comma", []Requirement{claim("cognito:groups", "Straße,ops")}, true},
		{"list claim lacks the value", []Requirement{claim("cognito:groups", "admins")}, false},
		{"number in JSON form", []Requirement{claim("custom:level", "3")}, true},
		{"boolean in JSON form", []Requirement{claim("email_verified", "true")}, true},
		{"missing claim", []Requirement{claim("custom:region", "eu")}, false},
		{"empty string claim", []Requirement{claim("custom:empty", "x")}, false},
		{"two lines, both met", []Requirement{claim("custom:tenant", "acme"), claim("cognito:groups", "staff")}, true},
		{"two lines, the second unmet", []Requirement{claim("custom:tenant", "acme"), claim("cognito:groups", "admins")}, false},
		{"with a group line", []Requirement{claim("custom:tenant", "acme"), {Groups: []string{"admins"}}}, false},
	} {
		id := &Identity{RawClaims: claims, Groups: []string{"staff", "Straße,ops"}}
		reason, scope := unmet(c.reqs, id)
		if (reason == "") != c.pass {
			t.Errorf("%s: unmet = %q, want pass %v", c.what, reason, c.pass)
		}
		if !c.pass && c.reqs[len(c.reqs)-1].Claim != nil && (reason != "lacks a required claim" || scope != "") {
			t.Errorf("%s: reason %q scope %q; want the claim left unnamed", c.what, reason, scope)
		}
	}
}

func TestClaimRequirementValidate(t *testing.T) {
	for _, c := range []struct {
		r    Requirement
		want string
	}{
		{Requirement{Claim: &ClaimRequirement{Name: "custom:tenant", Values: []string{"acme"}}}, ""},
		{Requirement{Claim: &ClaimRequirement{Name: "custom:tenant"}}, "at least one value"},
		{Requirement{Claim: &ClaimRequirement{Name: " ", Values: []string{"acme"}}}, "claim name"},
		{Requirement{Claim: &ClaimRequirement{Name: "x", Values: []string{""}}}, "empty value"},
		{Requirement{Groups: []string{"g"}, Claim: &ClaimRequirement{Name: "x", Values: []string{"y"}}}, "exactly one"},
	} {
		err := c.r.validate()
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("validate(%+v) = %v, want %q", c.r.Claim, err, c.want)
		}
	}
}
