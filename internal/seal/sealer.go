// Package seal encrypts values at rest (refresh tokens, cookies) with AES-256-GCM under keys derived from the configured secrets.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"time"
)

// Sealer encrypts Cognito refresh tokens before they are written to the
// sessions table, so a copy of the database (backup, replica, SQL injection
// elsewhere) does not hand out long-lived credentials.
//
// Wiring notes for cognito_login:
//
//   - The secret comes from the `secret` config option, or, when none is
//     configured, from LoadOrCreateKeyFile under Caddy's data directory
//     (caddy.AppDataDir(), chosen by the caller). Build one Sealer per config
//     load; it is safe for concurrent use.
//   - Pass the session id hash as associatedData to both Seal and Open. That
//     binds a sealed token to its row: copied to another session it fails to
//     open instead of logging someone in as somebody else.
//   - Treat any Open error as "no refresh token": end the session and send
//     the browser to sign in again. Never put the error's input in a log.
//   - Rotation: configure the new secret as current and the old one as
//     previous; tokens are re-sealed with the current key the next time a
//     session refreshes, after which the old secret can be dropped.
//
// Format: version (1 byte) || key id (4 bytes) || nonce (12) || ciphertext||tag.
// AES-256-GCM with a random 96-bit nonce per Seal; a key must seal fewer than
// 2^32 values, which one refresh per session per hour never approaches.
type Sealer struct {
	keys []sealerKey // keys[0] seals; all of them open
}

type sealerKey struct {
	id   [sealerKeyIDLen]byte
	aead cipher.AEAD // the raw key is not kept anywhere else
}

const (
	sealerVersion  byte = 1
	sealerKeyIDLen      = 4
	sealerHeader        = 1 + sealerKeyIDLen
	sealerNonceLen      = 12
	sealerTagLen        = 16
	// minSecretLen is the shortest secret New accepts.
	minSecretLen = 32
	// sealerKeyFileLen is the size of a key file made by LoadOrCreateKeyFile.
	sealerKeyFileLen = 32

	sealerInfo      = "caddy-cognito refresh tokens v1"
	sealerKeyIDInfo = "caddy-cognito refresh tokens v1 key id"
)

// Errors returned by Open; compare with errors.Is. None of them carries any
// part of the input or the keys.
var (
	ErrTooShort   = errors.New("sealed value is too short to be a sealed token")
	ErrVersion    = errors.New("sealed value has an unknown format version")
	ErrUnknownKey = errors.New("sealed value was made with a key that is not configured (current or previous)")
	ErrAuth       = errors.New("sealed value failed authentication: tampered with, bound to another session, or made with another key")
)

// New derives an AES-256 key from current (used to seal and open) and
// from each of previous (used only to open, for key rotation).
//
// A secret must be at least 32 bytes: 32 random bytes, or a passphrase of at
// least 32 characters. The key is derived with HKDF-SHA256 rather than used
// directly so a passphrase and a random key are handled alike, and so the
// same secret reused elsewhere in the plugin (cookies, state) yields an
// unrelated key. A secret with fewer than 8 distinct bytes is refused as an
// obvious placeholder ("changemechangeme…", "0000…").
func New(current []byte, previous ...[]byte) (*Sealer, error) {
	s := &Sealer{}
	for i, secret := range append([][]byte{current}, previous...) {
		which := "current secret"
		if i > 0 {
			which = fmt.Sprintf("previous secret #%d", i)
		}
		if len(secret) < minSecretLen {
			return nil, fmt.Errorf("sealer: %s is %d bytes; need at least %d (32 random bytes or a passphrase of 32+ characters)", which, len(secret), minSecretLen)
		}
		if distinctBytes(secret) < 8 {
			return nil, fmt.Errorf("sealer: %s is too repetitive to be a real secret", which)
		}
		k, err := newSealerKey(secret)
		if err != nil {
			return nil, fmt.Errorf("sealer: %s: %w", which, err)
		}
		dup := false
		for _, have := range s.keys {
			dup = dup || have.id == k.id
		}
		if dup {
			// Either the same secret twice (harmless, skip it) or a 1 in 2^32
			// collision; in both cases the first one wins.
			continue
		}
		s.keys = append(s.keys, k)
	}
	return s, nil
}

func newSealerKey(secret []byte) (sealerKey, error) {
	key, err := hkdf.Key(sha256.New, secret, nil, sealerInfo, 32)
	if err != nil {
		return sealerKey{}, err
	}
	// The key id comes from a separate HKDF output: it is stored in the clear
	// next to every token and must reveal nothing about the encryption key.
	id, err := hkdf.Key(sha256.New, secret, nil, sealerKeyIDInfo, sealerKeyIDLen)
	if err != nil {
		return sealerKey{}, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return sealerKey{}, err
	}
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return sealerKey{}, err
	}
	var k sealerKey
	copy(k.id[:], id)
	k.aead = aead
	clear(key)
	return k, nil
}

func distinctBytes(b []byte) int {
	var seen [256]bool
	n := 0
	for _, c := range b {
		if !seen[c] {
			seen[c] = true
			n++
		}
	}
	return n
}

// String keeps key material out of logs even if a Sealer is printed by
// mistake (%v, %+v, %#v, zap.Any).
func (s *Sealer) String() string { return fmt.Sprintf("Sealer(%d keys)", len(s.keys)) }

// GoString is String, for %#v.
func (s *Sealer) GoString() string { return s.String() }

// Seal encrypts plaintext with the current key, bound to associatedData.
// It does not fail: crypto/rand never returns an error on supported
// platforms (Go 1.24+ crashes the program instead).
func (s *Sealer) Seal(plaintext, associatedData []byte) []byte {
	k := s.keys[0]
	out := make([]byte, sealerHeader, sealerHeader+sealerNonceLen+len(plaintext)+sealerTagLen)
	out[0] = sealerVersion
	copy(out[1:], k.id[:])
	// The AEAD is cipher.NewGCMWithRandomNonce: it draws a random nonce for
	// every call and takes none (nil) from its caller.
	return k.aead.Seal(out, nil, plaintext, sealerAD(out[:sealerHeader], associatedData)) //nolint:gosec // G407: see above
}

// Open decrypts a value made by Seal with any configured key. It returns
// ErrTooShort, ErrVersion, ErrUnknownKey or ErrAuth.
// GCM cannot tell tampering, wrong associated data and a colliding key id
// apart, so all three are ErrAuth.
func (s *Sealer) Open(sealed, associatedData []byte) ([]byte, error) {
	if len(sealed) < 1 {
		return nil, ErrTooShort
	}
	if sealed[0] != sealerVersion {
		return nil, ErrVersion
	}
	if len(sealed) < sealerHeader+sealerNonceLen+sealerTagLen {
		return nil, ErrTooShort
	}
	ad := sealerAD(sealed[:sealerHeader], associatedData)
	found := false
	for _, k := range s.keys {
		if string(k.id[:]) != string(sealed[1:sealerHeader]) {
			continue
		}
		found = true
		if pt, err := k.aead.Open(nil, nil, sealed[sealerHeader:], ad); err == nil {
			return pt, nil
		}
	}
	if !found {
		return nil, ErrUnknownKey
	}
	return nil, ErrAuth
}

// sealerAD authenticates the header too, so the version byte and key id
// cannot be changed without Open failing.
func sealerAD(header, associatedData []byte) []byte {
	ad := make([]byte, 0, len(header)+len(associatedData))
	return append(append(ad, header...), associatedData...)
}

// LoadOrCreateKeyFile returns the 32-byte key stored at path, creating it
// with fresh random bytes when it does not exist yet.
//
// The file is made readable by its owner only (0600, parent directories
// 0700) and an existing file that is wider than 0600 or not exactly 32 bytes
// is refused rather than repaired: either means someone else touched it.
//
// Creation is race-free across processes (two Caddy instances starting on one
// data directory): the key is written to a temporary file, synced, and then
// hard-linked into place. Unlike rename, link fails when the target exists,
// so exactly one key wins and every process reads that one. A plain rename
// would let the loser overwrite the winner's key after the winner had already
// sealed tokens with it.
func LoadOrCreateKeyFile(path string) ([]byte, error) {
	key, err := readKeyFile(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("key file: create directory %s: %w", dir, err)
		}
		_ = os.Chmod(dir, 0o700) //nolint:gosec // G302: a directory, owner-only; MkdirAll is subject to umask
	}
	if err := createKeyFile(path); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	// Whoever won the race, the file at path is now the key. Read it back
	// rather than trusting our own bytes, so every process agrees.
	return readKeyFileSettled(path)
}

func createKeyFile(path string) error {
	key := make([]byte, sealerKeyFileLen)
	rand.Read(key)
	defer clear(key)

	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("key file: %w", err)
	}
	// Once linked (or on failure) the temporary name is only litter.
	defer func() { _ = os.Remove(tmp.Name()) }()
	if err := tmp.Chmod(0o600); err != nil && runtime.GOOS != "windows" {
		_ = tmp.Close() // the Chmod error is the one to report
		return fmt.Errorf("key file: %w", err)
	}
	_, err = tmp.Write(key)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("key file: write %s: %w", tmp.Name(), err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return err
		}
		// No hard links on this filesystem: fall back to an exclusive create.
		// A concurrent reader may see the file before it is complete, which
		// readKeyFileSettled tolerates for a moment.
		f, ferr := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600) //nolint:gosec // G304: the operator's configured key file
		if ferr != nil {
			return ferr
		}
		_, werr := f.Write(key)
		if werr == nil {
			werr = f.Sync()
		}
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return fmt.Errorf("key file: write %s: %w", path, werr)
		}
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()  // make the new name durable; not supported everywhere
		_ = d.Close() // read-only directory handle
	}
	return nil
}

// readKeyFileSettled retries briefly on a short file, which can only be
// another process mid-write on filesystems without hard links.
func readKeyFileSettled(path string) ([]byte, error) {
	var err error
	for range 50 {
		var key []byte
		if key, err = readKeyFile(path); !errors.Is(err, errKeyFileShort) {
			return key, err
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil, err
}

var errKeyFileShort = errors.New("is shorter than 32 bytes")

func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path) //nolint:gosec // G304: the operator's configured key file
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }() // read-only
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("key file %s: not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&^0o600 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("key file %s: mode %04o is too open; it must be 0600 or stricter (chmod 600 %s)", path, perm, path)
	}
	switch {
	case fi.Size() < sealerKeyFileLen:
		return nil, fmt.Errorf("key file %s: %d bytes %w (delete it to generate a new key, which ends all sessions)", path, fi.Size(), errKeyFileShort)
	case fi.Size() > sealerKeyFileLen:
		return nil, fmt.Errorf("key file %s: is %d bytes; want exactly %d", path, fi.Size(), sealerKeyFileLen)
	}
	key := make([]byte, sealerKeyFileLen)
	if _, err := io.ReadFull(f, key); err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	return key, nil
}
