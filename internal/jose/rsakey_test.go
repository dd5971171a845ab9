package jose

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"math/big"
	"testing"

	"github.com/caddy-cognito/caddy-cognito/internal/jose/josetest"
)

// Our RS256 check must say exactly what crypto/rsa.VerifyPKCS1v15 says,
// for any signature: these tests hold the two side by side.

// stdlibVerifies is the reference answer.
func stdlibVerifies(pub *rsa.PublicKey, digest *[sha256.Size]byte, sig []byte) bool {
	return rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig) == nil
}

// rawSign is the private-key operation on em, as a signature of the
// modulus' length: it makes signatures of any encoding, well-formed or not.
func rawSign(priv *rsa.PrivateKey, em []byte) []byte {
	s := new(big.Int).Exp(new(big.Int).SetBytes(em), priv.D, priv.N)
	return s.FillBytes(make([]byte, priv.Size()))
}

// encoding is 00 01 FF…FF 00 prefix digest, for a modulus of k bytes.
func encoding(k int, prefix, digest []byte) []byte {
	em := bytes.Repeat([]byte{0xff}, k)
	em[0], em[1] = 0, 1
	t := append(append([]byte{}, prefix...), digest...)
	copy(em[k-len(t):], t)
	em[k-len(t)-1] = 0
	return em
}

func TestVerifyPKCS1v15MatchesCryptoRSA(t *testing.T) {
	digest := sha256.Sum256([]byte("header.payload"))
	other := sha256.Sum256([]byte("header.other"))
	// 2056: a modulus whose bytes do not fill its last 64-bit word.
	for _, bits := range []int{2048, 2056, 3072} {
		priv := josetest.RSAKey(t, bits, "a")
		vk, err := newVerifyKey(&priv.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		k := priv.Size()
		good, err := rsa.SignPKCS1v15(nil, priv, crypto.SHA256, digest[:])
		if err != nil {
			t.Fatal(err)
		}
		sum512 := sha512.Sum512([]byte("header.payload"))
		sha512Sig, _ := rsa.SignPKCS1v15(nil, priv, crypto.SHA512, sum512[:])
		noPrefix, _ := rsa.SignPKCS1v15(nil, priv, crypto.Hash(0), digest[:])
		n := priv.N.FillBytes(make([]byte, k))
		nPlus1 := new(big.Int).Add(priv.N, big.NewInt(1)).FillBytes(make([]byte, k))
		nMinus1 := new(big.Int).Sub(priv.N, big.NewInt(1)).FillBytes(make([]byte, k))
		random := make([]byte, k)
		_, _ = rand.Read(random)
		em := encoding(k, sha256DigestInfo, digest[:])
		// A forgery's shape (Bleichenbacher, 2006): short padding and
		// garbage after the digest, which a parsing verifier may accept.
		short := append(append([]byte{0, 1, 0xff, 0}, sha256DigestInfo...), digest[:]...)
		short = append(short, bytes.Repeat([]byte{0x42}, k-len(short))...)
		mutate := func(i int, b byte) []byte {
			m := bytes.Clone(em)
			m[i] = b
			return m
		}
		cases := map[string][]byte{
			"valid":                   good,
			"valid, raw-signed":       rawSign(priv, em),
			"sha512 signature":        sha512Sig,
			"no DigestInfo":           noPrefix,
			"zero":                    make([]byte, k),
			"modulus":                 n,
			"modulus + 1":             nPlus1,
			"modulus - 1":             nMinus1,
			"all FF":                  bytes.Repeat([]byte{0xff}, k),
			"random":                  random,
			"one byte short":          good[1:],
			"one byte long":           append([]byte{0}, good...),
			"last bit flipped":        append(bytes.Clone(good[:k-1]), good[k-1]^1),
			"first byte not 00":       rawSign(priv, mutate(0, 1)),
			"block type 02":           rawSign(priv, mutate(1, 2)),
			"padding byte FE":         rawSign(priv, mutate(5, 0xfe)),
			"no 00 after the padding": rawSign(priv, mutate(k-len(sha256DigestInfo)-len(digest)-1, 0xff)),
			"DigestInfo changed":      rawSign(priv, mutate(k-len(digest)-2, 0x21)),
			"separator 01":            rawSign(priv, mutate(k-len(sha256DigestInfo)-len(digest)-1, 0x01)),
			"last digest byte":        rawSign(priv, mutate(k-1, em[k-1]^0x80)),
			"short padding, garbage":  rawSign(priv, short),
		}
		for name, sig := range cases {
			want := stdlibVerifies(&priv.PublicKey, &digest, sig)
			if got := vk.verifyPKCS1v15SHA256(&digest, sig); got != want {
				t.Errorf("%d bits, %s: ours %v, crypto/rsa %v", bits, name, got, want)
			}
			if vk.verifyPKCS1v15SHA256(&other, sig) {
				t.Errorf("%d bits, %s: verifies another digest", bits, name)
			}
		}
		if !vk.verifyPKCS1v15SHA256(&digest, good) {
			t.Errorf("%d bits: the valid signature does not verify", bits)
		}
	}
}

// FuzzVerifyPKCS1v15MatchesCryptoRSA: any signature bytes, any digest.
func FuzzVerifyPKCS1v15MatchesCryptoRSA(f *testing.F) {
	priv := josetest.RSAKey(f, 2048, "a")
	vk, err := newVerifyKey(&priv.PublicKey)
	if err != nil {
		f.Fatal(err)
	}
	digest := sha256.Sum256([]byte("x"))
	good, _ := rsa.SignPKCS1v15(nil, priv, crypto.SHA256, digest[:])
	f.Add(good, digest[:])
	f.Add(good[:100], digest[:])
	f.Add(bytes.Repeat([]byte{0xff}, 256), digest[:])
	f.Fuzz(func(t *testing.T, sig, d []byte) {
		var digest [sha256.Size]byte
		copy(digest[:], d)
		if got, want := vk.verifyPKCS1v15SHA256(&digest, sig), stdlibVerifies(&priv.PublicKey, &digest, sig); got != want {
			t.Fatalf("ours %v, crypto/rsa %v", got, want)
		}
	})
}

// BenchmarkVerifyKeyRS256 is the RS256 check of a fresh token's
// signature as the key set makes it (the modulus prepared once), beside
// BenchmarkCryptoRSAVerify, crypto/rsa's check of the same signature.
func BenchmarkVerifyKeyRS256(b *testing.B) {
	priv, digest, sig := benchSignature(b)
	vk, err := newVerifyKey(&priv.PublicKey)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if !vk.verifyPKCS1v15SHA256(digest, sig) {
			b.Fatal("refused")
		}
	}
}

func BenchmarkCryptoRSAVerify(b *testing.B) {
	priv, digest, sig := benchSignature(b)
	b.ReportAllocs()
	for b.Loop() {
		if !stdlibVerifies(&priv.PublicKey, digest, sig) {
			b.Fatal("refused")
		}
	}
}

func benchSignature(b *testing.B) (*rsa.PrivateKey, *[sha256.Size]byte, []byte) {
	priv := josetest.RSAKey(b, 2048, "a")
	digest := sha256.Sum256([]byte("header.payload"))
	sig, err := rsa.SignPKCS1v15(nil, priv, crypto.SHA256, digest[:])
	if err != nil {
		b.Fatal(err)
	}
	return priv, &digest, sig
}
