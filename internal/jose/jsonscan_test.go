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
