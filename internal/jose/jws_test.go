package jose

import (
	"bytes"
	"encoding/base64"
	"testing"
)

// TestDecodeInto: a segment that fits the caller's buffer is decoded in
// it, a longer one into a slice of its own, and both follow the strict
// decoder's rules.
func TestDecodeInto(t *testing.T) {
	var buf [8]byte
	for _, want := range [][]byte{[]byte("fits"), bytes.Repeat([]byte{0xfb}, 600)} {
		got, err := decodeInto(buf[:], base64.RawURLEncoding.EncodeToString(want))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%d bytes: got %d bytes, %v", len(want), len(got), err)
		}
	}
	if got, err := decodeInto(buf[:], "Zml0cw"); err != nil || &got[0] != &buf[0] {
		t.Errorf("a segment that fits was not decoded in the buffer (%v)", err)
	}
	// Padding, the standard alphabet, and bits left over from the last
	// character are refused, as b64.DecodeString refuses them.
	for _, bad := range []string{"Zml0cw==", "+/+/", "Zml0cx"} {
		if _, err := decodeInto(buf[:], bad); err == nil {
			t.Errorf("%q decoded", bad)
		}
	}
}
