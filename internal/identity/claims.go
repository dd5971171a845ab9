package identity

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/caddy-cognito/caddy-cognito/internal/jose"
)

// IDClaims are the ID token claims sign-in and sessions use.
type IDClaims struct {
	Issuer            string          `json:"iss"`
	Subject           string          `json:"sub"`
	CognitoUsername   string          `json:"cognito:username"`
	PreferredUsername string          `json:"preferred_username"`
	Email             string          `json:"email"`
	EmailVerifiedRaw  json.RawMessage `json:"email_verified"`
	GivenName         string          `json:"given_name"`
	FamilyName        string          `json:"family_name"`
	Groups            []string        `json:"cognito:groups"`
	IdentitiesRaw     json.RawMessage `json:"identities"`
	FromSSO           string          `json:"custom:from_sso"`
}

// ParseIDClaims decodes verified ID token claims with the strict scanner
// that token verification uses (jose.ForEachMember): one reading of the
// same bytes everywhere, so no claim can mean one thing to the verifier and
// another here (a repeated member and invalid UTF-8 are refused; a name
// is matched exactly, so `ISS` is not `iss`). Claims of another type than Cognito documents
// make it fail rather than guess; null counts as absent. The strings alias
// raw, which must not change afterwards.
func ParseIDClaims(raw json.RawMessage) (*IDClaims, error) {
	var c IDClaims
	terr := jose.ForEachMember(raw, func(name string, val []byte) *jose.TokenError {
		ok := true
		switch name {
		case "iss":
			ok = readString(&c.Issuer, val)
		case "sub":
			ok = readString(&c.Subject, val)
		case "cognito:username":
			ok = readString(&c.CognitoUsername, val)
		case "preferred_username":
			ok = readString(&c.PreferredUsername, val)
		case "email":
			ok = readString(&c.Email, val)
		case "given_name":
			ok = readString(&c.GivenName, val)
		case "family_name":
			ok = readString(&c.FamilyName, val)
		case "custom:from_sso":
			ok = readString(&c.FromSSO, val)
		case "cognito:groups":
			c.Groups, ok = jose.JSONStrings(val)
		case "email_verified":
			c.EmailVerifiedRaw = json.RawMessage(val)
		case "identities":
			c.IdentitiesRaw = json.RawMessage(val)
		}
		if !ok {
			return jose.ErrMalformed
		}
		return nil
	})
	if terr != nil {
		return nil, fmt.Errorf("ID token claims: %s", terr.Reason)
	}
	if c.Issuer == "" || c.Subject == "" {
		return nil, errors.New("ID token without iss or sub")
	}
	return &c, nil
}

// readString reads a JSON string (or null, left empty) into dst.
func readString(dst *string, val []byte) bool {
	if string(val) == "null" {
		return true
	}
	s, ok := jose.JSONString(val)
	*dst = s
	return ok
}

// Username is the name Cognito knows the user by.
func (c *IDClaims) Username() string {
	switch {
	case c.CognitoUsername != "":
		return c.CognitoUsername
	case c.PreferredUsername != "":
		return c.PreferredUsername
	}
	return c.Subject
}

// EmailVerified reports whether the claims vouch for Email (see the
// package-level EmailVerified).
func (c *IDClaims) EmailVerified() bool { return EmailVerified(c.EmailVerifiedRaw) }

// EmailVerified reports whether an `email_verified` claim, given as its
// raw JSON value, says true. Cognito puts a bool in tokens but the string
// "true" in /oauth2/userInfo, and some providers put the string in tokens
// too: both forms count, anything else (false, absent, "1") does not.
// Token verification and sign-in both decide with this one rule.
func EmailVerified(raw []byte) bool {
	switch string(raw) { // compared, not kept: no allocation
	case "true", `"true"`:
		return true
	}
	return false
}

// Provider is the federated identity provider's name
// (`identities[0].providerName`), "" for a native user. Cognito puts an
// array in ID tokens; a JSON string holding one is read too.
func (c *IDClaims) Provider() string {
	raw := c.IdentitiesRaw
	var s string
	if json.Unmarshal(raw, &s) == nil {
		raw = json.RawMessage(s)
	}
	var ids []struct {
		ProviderName string `json:"providerName"`
	}
	if json.Unmarshal(raw, &ids) != nil || len(ids) == 0 {
		return ""
	}
	return ids[0].ProviderName
}
