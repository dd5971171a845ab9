package seal

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

func testSecret(t *testing.T) []byte {
	t.Helper()
	b := make([]byte, 32)
	rand.Read(b)
	return b
}

func mustSealer(t *testing.T, current []byte, previous ...[]byte) *Sealer {
	t.Helper()
	s, err := New(current, previous...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var testAD = []byte("session-id-hash-1")

func TestSealerRoundTrip(t *testing.T) {
	s := mustSealer(t, testSecret(t))
	pass := mustSealer(t, []byte("a passphrase of at least 32 characters!"))
	for _, pt := range [][]byte{nil, {}, []byte("x"), []byte("eyJjdHkiOiJKV1QiLCJlbmMiOiJBMjU2R0NNIn0.refresh"), bytes.Repeat([]byte{0xff}, 4096)} {
		for _, sl := range []*Sealer{s, pass} {
			sealed := sl.Seal(pt, testAD)
			if len(sealed) != len(pt)+1+4+12+16 {
				t.Fatalf("sealed length %d for %d bytes", len(sealed), len(pt))
			}
			got, err := sl.Open(sealed, testAD)
			if err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("Open = %q, %v; want %q", got, err, pt)
			}
		}
	}
	// nil and empty associated data are the same thing to GCM.
	if _, err := s.Open(s.Seal([]byte("t"), nil), []byte{}); err != nil {
		t.Fatal(err)
	}
}

func TestSealerTamperEveryByte(t *testing.T) {
	s := mustSealer(t, testSecret(t))
	sealed := s.Seal([]byte("refresh-token-value"), testAD)
	for i := range sealed {
		for _, flip := range []byte{0x01, 0x80, 0xff} {
			bad := bytes.Clone(sealed)
			bad[i] ^= flip
			if pt, err := s.Open(bad, testAD); err == nil {
				t.Fatalf("byte %d ^ %#x: opened to %q", i, flip, pt)
			}
		}
	}
	for n := range sealed {
		if _, err := s.Open(sealed[:n], testAD); err == nil {
			t.Fatalf("truncated to %d bytes: opened", n)
		}
	}
	if _, err := s.Open(append(bytes.Clone(sealed), 0), testAD); !errors.Is(err, ErrAuth) {
		t.Fatalf("extended: %v", err)
	}
}

func TestSealerErrors(t *testing.T) {
	s := mustSealer(t, testSecret(t))
	sealed := s.Seal([]byte("rt"), testAD)

	if _, err := s.Open(sealed, []byte("session-id-hash-2")); !errors.Is(err, ErrAuth) {
		t.Errorf("wrong AD: %v", err)
	}
	if _, err := s.Open(sealed, nil); !errors.Is(err, ErrAuth) {
		t.Errorf("missing AD: %v", err)
	}
	other := mustSealer(t, testSecret(t))
	if _, err := other.Open(sealed, testAD); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("wrong key: %v", err)
	}
	// A wrong key that happens to carry the right key id still fails.
	forged := bytes.Clone(other.Seal([]byte("rt"), testAD))
	copy(forged[1:5], sealed[1:5])
	if _, err := s.Open(forged, testAD); !errors.Is(err, ErrAuth) {
		t.Errorf("wrong key, right id: %v", err)
	}
	v2 := bytes.Clone(sealed)
	v2[0] = 2
	if _, err := s.Open(v2, testAD); !errors.Is(err, ErrVersion) {
		t.Errorf("unknown version: %v", err)
	}
	for _, short := range [][]byte{nil, {}, {1}, sealed[:1+4+12+15]} {
		if _, err := s.Open(short, testAD); !errors.Is(err, ErrTooShort) {
			t.Errorf("short %d: %v", len(short), err)
		}
	}
}

func TestSealerRotation(t *testing.T) {
	oldK, newK := testSecret(t), testSecret(t)
	sealedOld := mustSealer(t, oldK).Seal([]byte("old-rt"), testAD)

	rotated := mustSealer(t, newK, oldK)
	if pt, err := rotated.Open(sealedOld, testAD); err != nil || string(pt) != "old-rt" {
		t.Fatalf("[new, old] Open = %q, %v", pt, err)
	}
	if _, err := mustSealer(t, newK).Open(sealedOld, testAD); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("[new] opened a token sealed with old: %v", err)
	}
	// Seal always uses the current key.
	sealedNew := rotated.Seal([]byte("new-rt"), testAD)
	if _, err := mustSealer(t, newK).Open(sealedNew, testAD); err != nil {
		t.Fatalf("sealed with current key does not open with [new]: %v", err)
	}
	if _, err := mustSealer(t, oldK).Open(sealedNew, testAD); err == nil {
		t.Fatal("sealed with current key opens with [old]")
	}
	// The same secret twice is harmless.
	if s := mustSealer(t, newK, newK, oldK); len(s.keys) != 2 {
		t.Fatalf("duplicate secret kept: %d keys", len(s.keys))
	}
}

func TestSealerNonceUniqueness(t *testing.T) {
	s := mustSealer(t, testSecret(t))
	seen := make(map[string]bool, 10000)
	for range 10000 {
		sealed := s.Seal([]byte("same plaintext"), testAD)
		nonce := string(sealed[5 : 5+12])
		if seen[nonce] {
			t.Fatal("nonce reused")
		}
		seen[nonce] = true
	}
}

func TestNewRefusesWeakSecrets(t *testing.T) {
	good := testSecret(t)
	for name, bad := range map[string][]byte{
		"empty":      nil,
		"short":      good[:31],
		"repetitive": []byte(strings.Repeat("changeme", 4)),
		"zeros":      make([]byte, 64),
	} {
		if _, err := New(bad); err == nil {
			t.Errorf("%s current secret accepted", name)
		}
		if _, err := New(good, bad); err == nil {
			t.Errorf("%s previous secret accepted", name)
		}
	}
}

func TestSealerNeverPrintsKeys(t *testing.T) {
	secret := []byte("this passphrase must never show up in any log line")
	s := mustSealer(t, secret)
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s", s, s, s, s)} {
		if strings.Contains(out, "passphrase") || !strings.Contains(out, "Sealer(1 keys)") {
			t.Fatalf("printed %q", out)
		}
	}
	_, err := New([]byte("short secret text"))
	if err == nil || strings.Contains(err.Error(), "short secret text") {
		t.Fatalf("error leaks the secret: %v", err)
	}
}

func TestLoadOrCreateKeyFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "caddy", "cognito")
	path := filepath.Join(dir, "refresh.key")
	key, err := LoadOrCreateKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(key) != 32 || bytes.Equal(key, make([]byte, 32)) {
		t.Fatalf("bad key (len %d)", len(key))
	}
	if runtime.GOOS != "windows" {
		assertMode(t, path, 0o600)
		assertMode(t, dir, 0o700)
	}
	again, err := LoadOrCreateKeyFile(path)
	if err != nil || !bytes.Equal(again, key) {
		t.Fatalf("second load differs (err %v)", err)
	}
	if _, err := New(key); err != nil {
		t.Fatalf("generated key refused by New: %v", err)
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, ".*tmp*"))
	if len(leftovers) != 0 {
		t.Fatalf("temporary files left behind: %v", leftovers)
	}
}

func assertMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s mode %04o; want %04o", path, got, want)
	}
}

func TestLoadOrCreateKeyFileConcurrent(t *testing.T) {
	for round := range 20 {
		path := filepath.Join(t.TempDir(), fmt.Sprint(round), "refresh.key")
		keys := make([][]byte, 8)
		errs := make([]error, 8)
		var start, wg sync.WaitGroup
		start.Add(1)
		for i := range keys {
			wg.Go(func() {
				start.Wait()
				keys[i], errs[i] = LoadOrCreateKeyFile(path)
			})
		}
		start.Done()
		wg.Wait()
		for i := range keys {
			if errs[i] != nil {
				t.Fatalf("round %d goroutine %d: %v", round, i, errs[i])
			}
			if !bytes.Equal(keys[i], keys[0]) {
				t.Fatalf("round %d: goroutines got different keys", round)
			}
		}
	}
}

func TestLoadOrCreateKeyFileRefuses(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, size int, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, bytes.Repeat([]byte{7}, size), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := map[string]struct {
		path string
		want string
	}{
		"empty": {write("empty.key", 0, 0o600), "shorter than 32"},
		"short": {write("short.key", 16, 0o600), "shorter than 32"},
		"long":  {write("long.key", 33, 0o600), "want exactly 32"},
		"dir":   {dir, "not a regular file"},
	}
	if runtime.GOOS != "windows" {
		cases["0644"] = struct{ path, want string }{write("open.key", 32, 0o644), "too open"}
		cases["0640"] = struct{ path, want string }{write("group.key", 32, 0o640), "too open"}
		cases["0700"] = struct{ path, want string }{write("exec.key", 32, 0o700), "too open"}
	}
	for name, tc := range cases {
		key, err := LoadOrCreateKeyFile(tc.path)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v; want it to mention %q", name, err, tc.want)
		}
		if key != nil {
			t.Errorf("%s: returned a key", name)
		}
	}
	// A refused file is left as it was: repairing it would hide tampering.
	if fi, _ := os.Stat(filepath.Join(dir, "short.key")); fi == nil || fi.Size() != 16 {
		t.Error("short key file was modified")
	}
	// 0400 is stricter than 0600 and fine.
	if _, err := LoadOrCreateKeyFile(write("ro.key", 32, 0o400)); err != nil {
		t.Errorf("0400: %v", err)
	}
}
