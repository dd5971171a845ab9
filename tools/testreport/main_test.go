package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestReport(t *testing.T) {
	in := strings.Join([]string{
		`{"Action":"start","Package":"p"}`,
		`{"Action":"run","Package":"p","Test":"TestOK"}`,
		`{"Action":"output","Package":"p","Test":"TestOK","Output":"=== RUN   TestOK\n"}`,
		`{"Action":"pass","Package":"p","Test":"TestOK"}`,
		`{"Action":"run","Package":"p","Test":"TestNoChromium"}`,
		`{"Action":"output","Package":"p","Test":"TestNoChromium","Output":"    x_test.go:12: chromium not found; set CI=true to fail instead\n"}`,
		`{"Action":"output","Package":"p","Test":"TestNoChromium","Output":"--- SKIP: TestNoChromium (0.00s)\n"}`,
		`{"Action":"skip","Package":"p","Test":"TestNoChromium"}`,
		`{"Action":"run","Package":"p","Test":"TestBad"}`,
		`{"Action":"output","Package":"p","Test":"TestBad","Output":"    x_test.go:20: got 3, want 4\n"}`,
		`{"Action":"fail","Package":"p","Test":"TestBad"}`,
		`{"Action":"output","Package":"p","Output":"FAIL\tp\t0.01s\n"}`,
		`{"Action":"fail","Package":"p"}`,
	}, "\n")
	var out bytes.Buffer
	r := &report{out: &out, buf: map[string][]string{}}
	if err := r.read(strings.NewReader(in)); err != nil {
		t.Fatal(err)
	}
	r.summary()
	got := out.String()
	for _, want := range []string{
		"got 3, want 4",  // a failure's output is shown
		"FAIL\tp\t0.01s", // package lines pass through
		"testreport: 1 skipped:\n  SKIP p TestNoChromium: chromium not found; set CI=true to fail instead\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "=== RUN") {
		t.Errorf("a passing test's output was printed:\n%s", got)
	}
	if !r.failed {
		t.Error("a failed test did not fail the report")
	}
}

func TestReportAllPass(t *testing.T) {
	var out bytes.Buffer
	r := &report{out: &out, buf: map[string][]string{}}
	_ = r.read(strings.NewReader(`{"Action":"run","Package":"p","Test":"T"}` + "\n" + `{"Action":"pass","Package":"p","Test":"T"}`))
	r.summary()
	if r.failed || !strings.Contains(out.String(), "no test skipped") {
		t.Errorf("failed=%v, out %q", r.failed, out.String())
	}
}
