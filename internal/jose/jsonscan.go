package jose

// A small, strict JSON scanner for token headers and claims: it walks an
// object once without building a map, and refuses what lenient decoders
// accept differently (duplicate members, invalid UTF-8).

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
	"unsafe"
)

// ForEachMember calls fn with each member of the JSON object data, in
// order, and stops at the first refusal fn returns. It refuses anything
// but a valid JSON object and, because parsers that disagree on duplicate
// members are a known way to smuggle claims, any object with a member name
// twice: both with ErrMalformed. Invalid UTF-8 is refused too (JSON
// requires UTF-8, and decoders differ in how they repair it). Names and
// values alias data, which must not change afterwards.
//
// Refusals are *TokenError, not error, so that callers need no type
// assertion to hand them on.
func ForEachMember(data []byte, fn func(name string, val []byte) *TokenError) *TokenError {
	if !utf8.Valid(data) || !validJSON(data) {
		return ErrMalformed
	}
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return ErrMalformed
	}
	var seen memberNames
	i = skipSpace(data, i+1)
	if data[i] == '}' {
		return nil
	}
	for {
		// data is valid JSON, so a member name string starts here.
		end := skipString(data, i)
		name, ok := JSONString(data[i:end])
		if !ok {
			return ErrMalformed
		}
		if !seen.add(name) {
			return ErrMalformed
		}
		i = skipSpace(data, end)
		i = skipSpace(data, i+1) // past ':'
		end = skipValue(data, i)
		if err := fn(name, data[i:end]); err != nil {
			return err
		}
		i = skipSpace(data, end)
		if data[i] == '}' {
			return nil
		}
		i = skipSpace(data, i+1) // past ','
	}
}

// memberNames detects a repeated member name in linear time: a short
// list (no allocation for the few members a token has), then a set once
// an object has more members than a list scan is cheap for.
type memberNames struct {
	buf  [16]string
	n    int
	many map[string]struct{}
}

// add records name and reports false when it was seen before.
func (m *memberNames) add(name string) bool {
	if m.many == nil {
		for _, s := range m.buf[:m.n] {
			if s == name {
				return false
			}
		}
		if m.n < len(m.buf) {
			m.buf[m.n] = name
			m.n++
			return true
		}
		m.many = make(map[string]struct{}, 2*len(m.buf))
		for _, s := range m.buf {
			m.many[s] = struct{}{}
		}
	}
	if _, dup := m.many[name]; dup {
		return false
	}
	m.many[name] = struct{}{}
	return true
}

func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\r', '\n':
			i++
		default:
			return i
		}
	}
	return i
}

// skipString returns the index just past the string starting at data[i].
func skipString(data []byte, i int) int {
	for i++; i < len(data); i++ {
		switch data[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}

// skipValue returns the index just past the (valid) value at data[i].
func skipValue(data []byte, i int) int {
	switch data[i] {
	case '"':
		return skipString(data, i)
	case '{', '[':
		depth := 0
		for i < len(data) {
			switch data[i] {
			case '"':
				i = skipString(data, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	default: // number, true, false, null
		for i < len(data) {
			switch data[i] {
			case ',', '}', ']', ' ', '\t', '\r', '\n':
				return i
			}
			i++
		}
		return i
	}
}

// JSONString returns the string a JSON string value (as ForEachMember
// hands it over) holds. Without escapes it aliases val (no copy).
func JSONString(val []byte) (string, bool) {
	if len(val) < 2 || val[0] != '"' {
		return "", false
	}
	inner := val[1 : len(val)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		if len(inner) == 0 {
			return "", true
		}
		return unsafe.String(&inner[0], len(inner)), true //nolint:gosec // G103: the documented alias of val, which is never written
	}
	var s string
	if json.Unmarshal(val, &s) != nil {
		return "", false
	}
	return s, true
}

// JSONStrings reads a JSON array of strings (null counts as none), as
// ForEachMember hands it over (valid JSON); an element that is not a
// string (null included) refuses the whole array.
func JSONStrings(val []byte) ([]string, bool) {
	if string(val) == "null" {
		return nil, true
	}
	if len(val) < 2 || val[0] != '[' || val[len(val)-1] != ']' {
		return nil, false
	}
	i := skipSpace(val, 1)
	if val[i] == ']' {
		return []string{}, true
	}
	out := make([]string, 0, 1+bytes.Count(val, []byte{','}))
	for i < len(val) && val[i] == '"' {
		end := skipString(val, i)
		s, ok := JSONString(val[i:end])
		if !ok {
			return nil, false
		}
		out = append(out, s)
		i = skipSpace(val, end)
		if i >= len(val) {
			break
		}
		switch val[i] {
		case ']':
			return out, i == len(val)-1
		case ',':
			i = skipSpace(val, i+1)
			continue
		}
		break
	}
	return nil, false
}

// NumericDate reads a JSON number of seconds since the epoch (RFC 7519
// NumericDate, fractions allowed). Strings and out-of-range values fail.
func NumericDate(val []byte) (time.Time, bool) {
	if len(val) == 0 || val[0] != '-' && (val[0] < '0' || val[0] > '9') {
		return time.Time{}, false
	}
	//nolint:gosec // G103: a read-only view that ParseFloat does not keep
	f, err := strconv.ParseFloat(unsafe.String(&val[0], len(val)), 64)
	if err != nil || f < 0 || f > 253402300799 { // year 9999
		return time.Time{}, false
	}
	sec := math.Floor(f)
	return time.Unix(int64(sec), int64((f-sec)*1e9)), true
}

// validJSON reports whether data is one JSON value (RFC 8259) with
// optional whitespace around it: what json.Valid reports, in one pass
// without its per-byte state functions (a fifth of a cold token check).
// UTF-8 inside strings is ForEachMember's own utf8.Valid check.
// FuzzValidJSON holds it to json.Valid.
func validJSON(data []byte) bool {
	i, ok := validValue(data, skipSpace(data, 0), 0)
	return ok && skipSpace(data, i) == len(data)
}

// maxJSONDepth bounds nesting, as encoding/json does (10000).
const maxJSONDepth = 10000

// validValue checks the value starting at data[i] and returns the index
// just past it.
func validValue(data []byte, i, depth int) (int, bool) {
	if i >= len(data) {
		return i, false
	}
	switch c := data[i]; {
	case c == '"':
		return validString(data, i)
	case c == '{' || c == '[':
		if depth >= maxJSONDepth {
			return i, false
		}
		return validContainer(data, i, depth+1)
	case c == 't':
		return validLiteral(data, i, "true")
	case c == 'f':
		return validLiteral(data, i, "false")
	case c == 'n':
		return validLiteral(data, i, "null")
	case c == '-' || c >= '0' && c <= '9':
		return validNumber(data, i)
	}
	return i, false
}

// validContainer checks the object or array starting at data[i].
func validContainer(data []byte, i, depth int) (int, bool) {
	closing, object := byte(']'), data[i] == '{'
	if object {
		closing = '}'
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == closing {
		return i + 1, true
	}
	for {
		var ok bool
		if object {
			if i >= len(data) || data[i] != '"' {
				return i, false
			}
			if i, ok = validString(data, i); !ok {
				return i, false
			}
			i = skipSpace(data, i)
			if i >= len(data) || data[i] != ':' {
				return i, false
			}
			i = skipSpace(data, i+1)
		}
		if i, ok = validValue(data, i, depth); !ok {
			return i, false
		}
		i = skipSpace(data, i)
		if i >= len(data) {
			return i, false
		}
		switch data[i] {
		case closing:
			return i + 1, true
		case ',':
			i = skipSpace(data, i+1)
		default:
			return i, false
		}
	}
}

// validString checks the string starting at data[i]: no control
// characters, only JSON's escapes.
func validString(data []byte, i int) (int, bool) {
	for i++; i < len(data); i++ {
		switch c := data[i]; {
		case c == '"':
			return i + 1, true
		case c < 0x20:
			return i, false
		case c == '\\':
			i++
			if i >= len(data) {
				return i, false
			}
			switch data[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(data) || !isHex(data[i+1]) || !isHex(data[i+2]) || !isHex(data[i+3]) || !isHex(data[i+4]) {
					return i, false
				}
				i += 4
			default:
				return i, false
			}
		}
	}
	return i, false
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// validNumber checks -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func validNumber(data []byte, i int) (int, bool) {
	if data[i] == '-' {
		i++
	}
	switch {
	case i < len(data) && data[i] == '0':
		i++
	case i < len(data) && isDigit(data[i]):
		for i < len(data) && isDigit(data[i]) {
			i++
		}
	default:
		return i, false
	}
	if i < len(data) && data[i] == '.' {
		i++
		if i >= len(data) || !isDigit(data[i]) {
			return i, false
		}
		for i < len(data) && isDigit(data[i]) {
			i++
		}
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if i >= len(data) || !isDigit(data[i]) {
			return i, false
		}
		for i < len(data) && isDigit(data[i]) {
			i++
		}
	}
	return i, true
}

func validLiteral(data []byte, i int, lit string) (int, bool) {
	if len(data)-i < len(lit) || string(data[i:i+len(lit)]) != lit {
		return i, false
	}
	return i + len(lit), true
}
