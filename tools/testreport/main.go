// Command testreport reads `go test -json` on stdin and prints what a
// plain `go test` prints (package results, the output of failed tests,
// build errors), then one line per skipped test with the reason it gave.
// A skip is never silent: outside CI the tests skip what the machine
// lacks, and this summary says so; with CI=true the tests fail instead.
//
// It exits 1 when a test or package failed, 0 otherwise; the Makefile
// also keeps go test's own exit status (pipefail), so a build failure
// fails too.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

// event is one line of test2json output (go doc test2json).
type event struct {
	Action     string
	Package    string
	Test       string
	Output     string
	ImportPath string // build-output events
}

type skip struct{ pkg, test, reason string }

type report struct {
	out     io.Writer
	buf     map[string][]string // output of a running test, by package + test
	skips   []skip
	failed  bool
	sawTest bool
}

func main() {
	r := &report{out: os.Stdout, buf: map[string][]string{}}
	if err := r.read(os.Stdin); err != nil {
		fmt.Fprintln(os.Stderr, "testreport:", err)
		os.Exit(1)
	}
	r.summary()
	if r.failed {
		os.Exit(1)
	}
}

func (r *report) read(in io.Reader) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if err := json.Unmarshal(line, &e); err != nil || e.Action == "" {
			// Not an event (go vet or the linker writing directly): pass it on.
			_, _ = fmt.Fprintln(r.out, string(line))
			continue
		}
		r.handle(e)
	}
	return sc.Err()
}

func (r *report) handle(e event) {
	key := e.Package + " " + e.Test
	switch {
	case e.Action == "build-output":
		_, _ = fmt.Fprint(r.out, e.Output)
	case e.Action == "build-fail":
		r.failed = true
	case e.Test == "":
		// Package-level lines: "ok", "FAIL", "?", and output from TestMain.
		if e.Action == "output" && e.Output != "PASS\n" { // plain go test prints only "ok"
			_, _ = fmt.Fprint(r.out, e.Output)
		}
		if e.Action == "fail" {
			r.failed = true
		}
	case e.Action == "run":
		r.sawTest = true
		r.buf[key] = nil
	case e.Action == "output":
		r.buf[key] = append(r.buf[key], e.Output)
	case e.Action == "fail":
		r.failed = true
		for _, l := range r.buf[key] {
			_, _ = fmt.Fprint(r.out, l)
		}
		delete(r.buf, key)
	case e.Action == "skip":
		r.skips = append(r.skips, skip{e.Package, e.Test, reason(r.buf[key])})
		delete(r.buf, key)
	case e.Action == "pass":
		delete(r.buf, key)
	}
}

// reason is what the test said before "--- SKIP", without the file:line
// prefixes the testing package adds.
func reason(lines []string) string {
	var parts []string
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- ") {
			continue
		}
		if i := strings.Index(t, ": "); i > 0 && strings.Contains(t[:i], ".go:") {
			t = t[i+2:]
		}
		parts = append(parts, t)
	}
	if len(parts) == 0 {
		return "(no reason given)"
	}
	return strings.Join(parts, " / ")
}

func (r *report) summary() {
	if len(r.skips) == 0 {
		if r.sawTest {
			_, _ = fmt.Fprintln(r.out, "testreport: no test skipped")
		}
		return
	}
	_, _ = fmt.Fprintf(r.out, "testreport: %d skipped:\n", len(r.skips))
	for _, s := range r.skips {
		_, _ = fmt.Fprintf(r.out, "  SKIP %s %s: %s\n", s.pkg, s.test, s.reason)
	}
}
