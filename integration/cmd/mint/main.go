// Command mint prints distinct valid Cognito access tokens, one per line,
// signed with cognito-local's own test key (so cognito-local's JWKS
// verifies them): scripts/bench-wrk.sh sends each request a token the
// server has never seen, to measure the cold path.
//
//	mint -issuer http://localhost:9229/local_x -client abc -sub … -username bench -n 25000 > tokens
//
// With -rsa it instead prints the time of one raw RSA-2048 PKCS#1 v1.5
// SHA-256 verification on this machine (Go's crypto/rsa, the floor of any
// cold token check), as `RSA_VERIFY_NS=<ns>`, for the script to compare
// the cold path with, measured on the CPU the server runs on. With
// -verify N it makes exactly N such verifications and prints nothing: the
// script counts the instructions of -verify 0 and -verify N under
// callgrind, and their difference over N is one verification's.
package main

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"flag"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sync"
	"testing"

	"github.com/caddy-cognito/caddy-cognito/integration/internal/cognitolocal"
)

func main() {
	issuer := flag.String("issuer", "", "the pool's issuer")
	client := flag.String("client", "", "the app client id")
	sub := flag.String("sub", "", "the user's sub")
	username := flag.String("username", "bench", "the user's username")
	n := flag.Int("n", 25000, "how many tokens")
	rsaBench := flag.Bool("rsa", false, "print the time of one raw RSA-2048 verification instead")
	rsaRuns := flag.Int("runs", 3, "with -rsa: benchmark runs of about a second, the median is printed")
	verifyN := flag.Int("verify", -1, "make exactly this many raw RSA-2048 verifications and print nothing")
	flag.Parse()

	m, err := cognitolocal.LoadMinter()
	if err != nil {
		fail(err)
	}
	if *verifyN >= 0 {
		rsaVerify(m.Key, *verifyN)
		return
	}
	if *rsaBench {
		fmt.Printf("RSA_VERIFY_NS=%d\n", rsaVerifyNS(m.Key, max(*rsaRuns, 1)))
		return
	}
	if *issuer == "" || *client == "" || *sub == "" || *n < 1 {
		fail(fmt.Errorf("-issuer, -client, -sub and a positive -n are required"))
	}
	tokens := make([]string, *n)
	var wg sync.WaitGroup
	errs := make(chan error, runtime.NumCPU())
	for w := range runtime.NumCPU() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < *n; i += runtime.NumCPU() {
				// The jti makes every token distinct, as Cognito's are.
				c := m.AccessClaims(*issuer, *client, *sub, *username).With("jti", fmt.Sprintf("bench-%d", i))
				t, err := m.Sign(c)
				if err != nil {
					errs <- err
					return
				}
				tokens[i] = t
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		fail(err)
	}
	for _, t := range tokens {
		fmt.Println(t)
	}
}

// rsaVerify makes n verifications of one signature, the same work as
// each rsaVerifyNS loop's.
func rsaVerify(key *rsa.PrivateKey, n int) {
	sum, sig := rsaSigned(key)
	for range n {
		if err := rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA256, sum[:], sig); err != nil {
			fail(err)
		}
	}
}

// rsaSigned is the digest and signature every verification checks.
func rsaSigned(key *rsa.PrivateKey) ([32]byte, []byte) {
	sum := sha256.Sum256([]byte("caddy-cognito bench"))
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, sum[:])
	if err != nil {
		fail(err)
	}
	return sum, sig
}

// rsaVerifyNS is the median of runs benchmark runs (about a second each)
// of one verification.
func rsaVerifyNS(key *rsa.PrivateKey, runs int) int64 {
	sum, sig := rsaSigned(key)
	var ns []int64
	for range runs {
		r := testing.Benchmark(func(b *testing.B) {
			for b.Loop() {
				if err := rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA256, sum[:], sig); err != nil {
					b.Fatal(err)
				}
			}
		})
		ns = append(ns, r.NsPerOp())
	}
	slices.Sort(ns)
	return ns[len(ns)/2]
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "mint:", err)
	os.Exit(1)
}
