package jose

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"go.uber.org/zap"
)

// Defaults of a KeySet. Cognito rotates keys rarely and announces new ones
// in the JWKS before signing with them, so a slow refresh plus an on-demand
// refetch for an unknown kid is enough.
const (
	defaultRefreshInterval = 15 * time.Minute
	defaultRetryMin        = 5 * time.Second // first retry after a failed fetch; doubles up to the refresh interval
	defaultUnknownKidCool  = 60 * time.Second
	defaultFetchTimeout    = 10 * time.Second
	defaultFirstFetchWait  = 2 * time.Second // how long WaitFirstFetch (and an unknown kid) waits for a fetch
	maxJWKSBody            = 1 << 20
	minRSABits             = 2048
	// maxRSABits bounds the keys kept: preparing a key's modulus costs
	// the square of its size, and a JWKS of 1 MiB could otherwise hold a
	// key of millions of bits. Cognito's are 2048.
	maxRSABits = 4096
)

// KeySetOptions tunes a KeySet; the zero value is the production setting,
// and tests shorten the timings.
type KeySetOptions struct {
	RefreshInterval time.Duration // successful fetch → next fetch
	RetryMin        time.Duration // failed fetch → next fetch, doubling
	Cooldown        time.Duration // at most one unknown-kid refetch per window
	FirstWait       time.Duration // bound on waiting for an in-flight fetch
	// Client fetches the JWKS; nil means a client with a timeout that
	// follows only the redirects CheckRedirectURL accepts.
	Client *http.Client
	// CheckRedirectURL accepts or refuses the URL a JWKS redirect leads
	// to (the caller's rule for where keys may come from); nil follows no
	// redirect. It applies to the default Client only.
	CheckRedirectURL func(rawURL string) error
	Logger           *zap.Logger
	// Now is the clock of the unknown-kid cool-down; nil means time.Now.
	// Tests step it instead of sleeping through the window.
	Now func() time.Time
}

func (o KeySetOptions) withDefaults() KeySetOptions {
	if o.RefreshInterval <= 0 {
		o.RefreshInterval = defaultRefreshInterval
	}
	if o.RetryMin <= 0 {
		o.RetryMin = defaultRetryMin
	}
	if o.Cooldown <= 0 {
		o.Cooldown = defaultUnknownKidCool
	}
	if o.FirstWait <= 0 {
		o.FirstWait = defaultFirstFetchWait
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: defaultFetchTimeout, CheckRedirect: keyRedirectPolicy(o.CheckRedirectURL)}
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// keyMap is one immutable generation of the key set; a fetch replaces the
// whole map so readers need no lock.
type keyMap struct {
	keys map[string]*verifyKey
}

// fetchCall is one fetch that any number of waiters share.
type fetchCall struct {
	done chan struct{}
	err  error
}

// KeySet is the cache of one issuer's JSON Web Key Set, meant to be shared
// by everything that trusts that issuer, and usable by go-oidc as an
// oidc.KeySet. The zero value holds no keys and fetches none: it refuses
// every token as Unavailable.
//
// Only RSA signing keys of 2048 to 4096 bits are kept. A failed or empty
// fetch never evicts keys that were fetched before.
type KeySet struct {
	url  string
	opts KeySetOptions
	log  *zap.Logger

	current atomic.Pointer[keyMap] // nil until the first successful fetch
	failing atomic.Bool            // the latest fetch failed
	fetches atomic.Int64           // fetch attempts, for tests and debugging
	fetchOK atomic.Int64           // successful fetches (metrics)
	fetchNo atomic.Int64           // failed fetches, shutting down aside (metrics)
	fetched atomic.Int64           // Unix nanoseconds of the latest successful fetch

	ctx    context.Context // bounds the refresh loop and every fetch
	cancel context.CancelFunc
	wg     sync.WaitGroup // the loop and any in-flight fetch

	firstDone chan struct{} // closed once the first fetch attempt ends

	mu         sync.Mutex
	inflight   *fetchCall
	lastForced time.Time // last unknown-kid refetch
	closed     bool
}

var _ oidc.KeySet = (*KeySet)(nil)

// NewKeySet starts a KeySet for url: its first fetch begins at once and a
// background loop refreshes it until Destruct.
func NewKeySet(url string, opts KeySetOptions) *KeySet {
	opts = opts.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	k := &KeySet{
		url:       url,
		opts:      opts,
		log:       opts.Logger.With(zap.String("jwks_url", url)),
		ctx:       ctx,
		cancel:    cancel,
		firstDone: make(chan struct{}),
	}
	k.wg.Add(1)
	go k.loop()
	return k
}

// Destruct stops the refresh loop and waits for it and any in-flight fetch
// (which honour the cancelled context). It has the shape of
// caddy.Destructor, so that a caddy.UsagePool can hold a KeySet.
func (k *KeySet) Destruct() error {
	k.mu.Lock()
	k.closed = true
	k.mu.Unlock()
	k.cancel()
	k.wg.Wait()
	return nil
}

// loop fetches at once, then every RefreshInterval; after a failure it
// retries sooner, with a doubling delay capped at the refresh interval.
func (k *KeySet) loop() {
	defer k.wg.Done()
	first := true
	failures := 0
	for {
		call := k.fetchShared()
		select {
		case <-call.done:
		case <-k.ctx.Done():
			return
		}
		if first {
			first = false
			close(k.firstDone)
		}
		delay := k.opts.RefreshInterval
		if call.err != nil {
			failures++
			delay = k.opts.RetryMin << min(failures-1, 16)
			if delay <= 0 || delay > k.opts.RefreshInterval {
				delay = k.opts.RefreshInterval
			}
		} else {
			failures = 0
		}
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-k.ctx.Done():
			t.Stop()
			return
		}
	}
}

// fetchShared starts a fetch, or joins the one in flight, so that the
// refresh loop and any number of unknown-kid lookups cause one request.
func (k *KeySet) fetchShared() *fetchCall {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.fetchSharedLocked()
}

func (k *KeySet) fetchSharedLocked() *fetchCall {
	if k.inflight != nil {
		return k.inflight
	}
	call := &fetchCall{done: make(chan struct{})}
	if k.closed {
		call.err = errors.New("key set closed")
		close(call.done)
		return call
	}
	k.inflight = call
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		err := k.fetch(k.ctx)
		k.mu.Lock()
		k.inflight = nil
		k.mu.Unlock()
		call.err = err
		close(call.done)
	}()
	return call
}

// fetch downloads and installs the key set. On any failure the keys in
// use stay in place.
func (k *KeySet) fetch(ctx context.Context) error {
	k.fetches.Add(1)
	keys, err := k.download(ctx)
	if ctx.Err() == nil {
		k.failing.Store(err != nil)
	}
	if err != nil {
		if ctx.Err() == nil { // not just shutting down
			k.fetchNo.Add(1)
			k.log.Warn("fetching signing keys failed; keeping the keys already held (if any)",
				zap.Error(err), zap.Bool("have_keys", k.current.Load() != nil))
		}
		return err
	}
	kids := make([]string, 0, len(keys))
	for kid := range keys {
		kids = append(kids, kid)
	}
	k.current.Store(&keyMap{keys: keys})
	k.fetched.Store(time.Now().UnixNano())
	k.fetchOK.Add(1)
	k.log.Debug("signing keys fetched", zap.Strings("kids", kids))
	return nil
}

func (k *KeySet) download(ctx context.Context) (map[string]*verifyKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := k.opts.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }() // read-only: nothing to flush
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("unexpected HTTP status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBody+1))
	if err != nil {
		return nil, fmt.Errorf("reading response: %w", err)
	}
	if len(body) > maxJWKSBody {
		return nil, fmt.Errorf("response larger than %d bytes", maxJWKSBody)
	}
	keys, skipped, err := parseJWKS(body)
	if err != nil {
		return nil, err
	}
	if skipped > 0 {
		k.log.Debug("ignored unusable keys in the key set", zap.Int("count", skipped))
	}
	if len(keys) == 0 {
		return nil, errors.New("key set holds no usable RS256 signing key")
	}
	return keys, nil
}

// parseJWKS keeps the RSA signature keys of 2048 to 4096 bits that are
// (or may be) used for RS256. Each key is parsed on its own so that one key
// of a kind we do not know cannot hide the others.
func parseJWKS(body []byte) (map[string]*verifyKey, int, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&doc); err != nil {
		return nil, 0, errors.New("invalid key set JSON")
	}
	keys := make(map[string]*verifyKey, len(doc.Keys))
	skipped := 0
	for _, raw := range doc.Keys {
		kid, pk := parseJWK(raw)
		if pk == nil {
			skipped++
			continue
		}
		if _, dup := keys[kid]; dup {
			// Two keys under one kid: we cannot tell which one signs.
			delete(keys, kid)
			skipped += 2
			continue
		}
		keys[kid] = pk
	}
	return keys, skipped, nil
}

func parseJWK(raw []byte) (string, *verifyKey) {
	key, err := jwk.ParseKey(raw)
	if err != nil {
		return "", nil
	}
	kid, ok := key.KeyID()
	if !ok || kid == "" {
		return "", nil
	}
	if use, ok := key.KeyUsage(); ok && use != "sig" {
		return "", nil
	}
	if alg, ok := key.Algorithm(); ok && alg.String() != "RS256" {
		return "", nil
	}
	var pk rsa.PublicKey
	if err := jwk.Export(key, &pk); err != nil {
		return "", nil
	}
	if pk.N == nil || pk.N.BitLen() < minRSABits || pk.N.BitLen() > maxRSABits {
		return "", nil
	}
	vk, err := newVerifyKey(&pk)
	if err != nil {
		return "", nil
	}
	return kid, vk
}

// lookup returns the key for kid. An unknown kid triggers at most one
// refetch per cool-down window, shared by all concurrent lookups, and the
// answer then comes from the new set. While the JWKS cannot be fetched, an
// unknown kid may be a key we failed to learn: that is Unavailable, not a
// bad token.
func (k *KeySet) lookup(ctx context.Context, kid string) (*verifyKey, *TokenError) {
	if m := k.current.Load(); m != nil {
		if pk := m.keys[kid]; pk != nil {
			return pk, nil
		}
	}
	if call := k.refetchForUnknownKid(); call != nil {
		t := time.NewTimer(k.opts.FirstWait)
		select {
		case <-call.done:
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	m := k.current.Load()
	if m == nil {
		return nil, errUnavailable
	}
	if pk := m.keys[kid]; pk != nil {
		return pk, nil
	}
	if k.failing.Load() {
		return nil, errUnavailable
	}
	return nil, errUnknownKey
}

// refetchForUnknownKid returns the fetch to wait for, or nil when the
// cool-down forbids one. A fetch already in flight is always joined.
func (k *KeySet) refetchForUnknownKid() *fetchCall {
	if k.ctx == nil {
		return nil // not made by newKeySet: nothing to fetch with
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.inflight != nil {
		return k.inflight
	}
	now := k.opts.Now()
	if !k.lastForced.IsZero() && now.Sub(k.lastForced) < k.opts.Cooldown {
		return nil
	}
	k.lastForced = now
	return k.fetchSharedLocked()
}

// VerifySignature implements oidc.KeySet with the same strict rules as
// the Verifier (compact JWS, RS256 only, kid from this set, no embedded
// keys) and returns the payload. go-oidc checks the claims itself.
func (k *KeySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	payload, terr := VerifyJWS(ctx, k, jwt, DefaultMaxTokenSize)
	if terr != nil {
		return nil, terr
	}
	return payload, nil
}

// WaitFirstFetch waits until the first fetch attempt has ended, at most
// FirstWait or until ctx is done, and reports whether it ended. A KeySet
// not made by NewKeySet never fetches: it reports true at once.
//
// It lets a caller start with keys in hand without ever failing to start:
// an unreachable JWKS only delays it, and tokens are refused as
// Unavailable until the keys arrive.
func (k *KeySet) WaitFirstFetch(ctx context.Context) bool {
	if k.firstDone == nil {
		return true
	}
	t := time.NewTimer(k.opts.FirstWait)
	defer t.Stop()
	select {
	case <-k.firstDone:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

// HasKeys reports whether a fetch has succeeded, so that tokens can be
// checked at all.
func (k *KeySet) HasKeys() bool { return k.current.Load() != nil }

// KeyStats is what a KeySet can say about itself, for metrics and
// health checks.
type KeyStats struct {
	Keys          int       // signing keys held
	FetchedAt     time.Time // the latest successful fetch; zero before the first
	FetchesOK     int64     // successful fetches since the KeySet was made
	FetchesFailed int64     // failed ones
}

// Stats reports the key set's keys and fetches.
func (k *KeySet) Stats() KeyStats {
	st := KeyStats{FetchesOK: k.fetchOK.Load(), FetchesFailed: k.fetchNo.Load()}
	if m := k.current.Load(); m != nil {
		st.Keys = len(m.keys)
	}
	if at := k.fetched.Load(); at != 0 {
		st.FetchedAt = time.Unix(0, at)
	}
	return st
}

// keyRedirectPolicy holds a redirect of the JWKS URL to check, the rule
// the configured URL obeys: keys must not be fetched from elsewhere (or in
// the clear) because a server said so. Without a rule, no redirect is
// followed.
func keyRedirectPolicy(check func(rawURL string) error) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if len(via) >= 5 {
			return errors.New("too many redirects")
		}
		if check == nil {
			return errors.New("JWKS redirect not followed")
		}
		return check(req.URL.String())
	}
}
