package userstore

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits keep rows and headers sane; Cognito's own limits are lower.
const (
	maxUsernameLen = 128
	maxEmailLen    = 254
	maxNameLen     = 256
	maxRoleLen     = 64
	maxKeyLen      = 2048 // issuer, sub, client id
)

// hasControl reports control characters, which must never reach a header,
// a log line or a placeholder.
func hasControl(s string) bool {
	return strings.IndexFunc(s, unicode.IsControl) >= 0
}

func checkText(field, v string, max int, required bool) error {
	if required && strings.TrimSpace(v) == "" {
		return invalidf("%s is required", field)
	}
	if !utf8.ValidString(v) {
		return invalidf("%s is not valid UTF-8", field)
	}
	if hasControl(v) {
		return invalidf("%s contains control characters", field)
	}
	if len(v) > max {
		return invalidf("%s is longer than %d bytes", field, max)
	}
	return nil
}

func checkUsername(v string) error {
	if err := checkText("username", v, maxUsernameLen, true); err != nil {
		return err
	}
	if v != strings.TrimSpace(v) {
		return invalidf("username %q has leading or trailing spaces", v)
	}
	if looksLikeUserID(v) {
		return invalidf("username %q has the form of a user id (u_ and 32 hex digits)", v)
	}
	return nil
}

func checkEmail(v string) error {
	if v == "" {
		return nil
	}
	if err := checkText("email", v, maxEmailLen, false); err != nil {
		return err
	}
	at := strings.LastIndexByte(v, '@')
	if at <= 0 || at == len(v)-1 || strings.ContainsAny(v, " \t,;<>") {
		return invalidf("email %q is not an address", v)
	}
	return nil
}

// checkRole: roles travel joined with "," in placeholders and headers, so
// they are restricted to a token alphabet.
func checkRole(r string) error {
	if r == "" {
		return invalidf("empty role name")
	}
	if len(r) > maxRoleLen {
		return invalidf("role %q is longer than %d bytes", r, maxRoleLen)
	}
	for i, c := range r {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			i > 0 && (c == '_' || c == '-' || c == '.' || c == ':' || c == '/')
		if !ok {
			return invalidf("role %q: use letters, digits and _ - . : / (not first)", r)
		}
	}
	return nil
}

// cleanRoles validates and de-duplicates roles, keeping their order.
func cleanRoles(roles []string) ([]string, error) {
	seen := make(map[string]bool, len(roles))
	out := make([]string, 0, len(roles))
	for _, r := range roles {
		if err := checkRole(r); err != nil {
			return nil, err
		}
		if !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	return out, nil
}
