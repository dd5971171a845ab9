package jose

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// FuzzForEachMember checks the hand-written member scanner against
// encoding/json: same members for every object, refusal of everything else.
func FuzzForEachMember(f *testing.F) {
	for _, s := range []string{`{}`, ` {"a" : 1 , "b":[1,{"c":"}"}],"d":"\"x\\\\"} `, `{"a":1,"a":2}`,
		`{"\u0061":1,"a":2}`, `[1]`, `"s"`, `null`, `{"a":{"b":{"c":[[]]}}}`, `{"e":-1.5e3,"t":true,"n":null}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got := map[string]string{}
		err := ForEachMember(data, func(name string, val []byte) *TokenError {
			got[name] = string(val)
			return nil
		})
		var want map[string]json.RawMessage
		werr := json.Unmarshal(data, &want)
		isObject := werr == nil && want != nil
		if !isObject {
			if err == nil {
				t.Fatalf("accepted %q", data)
			}
			return
		}
		if err != nil {
			if len(want) == len(got) && bytes.Count(data, []byte(`:`)) <= len(want) {
				t.Fatalf("refused %q: %v", data, err)
			}
			return // a duplicate member (json keeps the last one)
		}
		if len(got) != len(want) {
			t.Fatalf("%q: got %d members, want %d", data, len(got), len(want))
		}
		for k, v := range want {
			if strings.TrimSpace(got[k]) != strings.TrimSpace(string(v)) {
				t.Fatalf("%q: member %q = %q, want %q", data, k, got[k], v)
			}
		}
	})
}

// TestForEachMemberManyMembers: duplicate detection holds past the short
// list (where it switches to a set), wherever the repeated name sits.
func TestForEachMemberManyMembers(t *testing.T) {
	object := func(n int, extra string) []byte {
		var b strings.Builder
		b.WriteString("{")
		for i := 0; i < n; i++ {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `"m%d":%d`, i, i)
		}
		b.WriteString(extra + "}")
		return []byte(b.String())
	}
	for _, n := range []int{15, 16, 17, 100, 5000} {
		count := 0
		if err := ForEachMember(object(n, ""), func(string, []byte) *TokenError { count++; return nil }); err != nil || count != n {
			t.Errorf("%d distinct members: %d seen, err %v", n, count, err)
		}
		for _, dup := range []int{0, n / 2, n - 1} {
			if err := ForEachMember(object(n, fmt.Sprintf(`,"m%d":0`, dup)), func(string, []byte) *TokenError { return nil }); err == nil {
				t.Errorf("%d members with m%d repeated at the end: accepted", n, dup)
			}
		}
	}
}

// FuzzValidJSON holds the one-pass validator to encoding/json's.
func FuzzValidJSON(f *testing.F) {
	for _, s := range []string{``, ` `, `{}`, `[]`, `""`, `"\u00e9\n\/"`, `"\u00G0"`, `"\x"`, "\"a\tb\"", `0`, `-0`, `01`, `-`, `1.`,
		`1.5e+3`, `1e`, `1E-0`, `.5`, `true`, `tru`, `truex`, `null`, `nul`, `[1,]`, `[,1]`, `{"a":1,}`, `{"a" 1}`, `{1:2}`,
		`{"a":[1,{"b":null}],"c":"d"}`, ` [ 1 , 2 ] `, `[1] [2]`, `{"a":1}}`, `[[[]]]`, `[[[]]`, "\"\xff\"", `"\"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if got, want := validJSON(data), json.Valid(data); got != want {
			t.Fatalf("validJSON(%q) = %v, json.Valid says %v", data, got, want)
		}
	})
}

// TestValidJSONDepth: the nesting limit is encoding/json's (10000 deep).
func TestValidJSONDepth(t *testing.T) {
	for _, depth := range []int{1, 9999, 10000, 10001, 20000} {
		data := []byte(strings.Repeat("[", depth) + strings.Repeat("]", depth))
		if got, want := validJSON(data), json.Valid(data); got != want {
			t.Errorf("depth %d: validJSON %v, json.Valid %v", depth, got, want)
		}
	}
}

func TestJSONStrings(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
		ok   bool
	}{
		{`null`, nil, true},
		{`[]`, []string{}, true},
		{` [ ] `[1:4], []string{}, true},
		{`["a"]`, []string{"a"}, true},
		{`[ "a" , "b\"c" ,"\u00e9"]`, []string{"a", `b"c`, "é"}, true},
		{`["a",null]`, nil, false}, // never coerced to ""
		{`["a",1]`, nil, false},
		{`[["a"]]`, nil, false},
		{`"a"`, nil, false},
		{`{"a":"b"}`, nil, false},
		{`1`, nil, false},
		{``, nil, false},
	} {
		got, ok := JSONStrings([]byte(c.in))
		if ok != c.ok || fmt.Sprint(got) != fmt.Sprint(c.want) || (ok && (got == nil) != (c.want == nil)) {
			t.Errorf("JSONStrings(%s) = %q, %v; want %q, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}
