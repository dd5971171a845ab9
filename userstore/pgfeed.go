package userstore

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/zap"
)

// pgFeed keeps a PostgreSQL store's change stamp in memory: one dedicated
// connection LISTENs to the notifications every write transaction sends
// (postgres.go) and publishes the newest change_counter in an atomic, so a
// request reads the stamp without a query. A change committed by any
// instance reaches every other one as fast as the notification travels.
//
// A notification lost while the connection was down can never leave a
// stale cache trusted: until the connection is back, LISTENing again, and
// has re-read the counter, every stamp is new (Changes), so no cached
// entry matches and each request reads the store.
type pgFeed struct {
	cfg       *pgx.ConnConfig
	log       *zap.Logger
	heartbeat time.Duration

	counter atomic.Int64  // the newest change_counter seen
	live    atomic.Bool   // listening, and counter read since LISTEN
	unknown atomic.Uint64 // a fresh value for each stamp taken while not live

	// for tests: connections made, counter re-reads on a quiet connection
	connects, beats atomic.Int64

	first  chan struct{} // closed after the first connection attempt
	cancel context.CancelFunc
	done   chan struct{}
}

const (
	// pgFeedHeartbeat: after this long without a notification the feed
	// re-reads the counter, which proves the connection still works (a
	// silent network loss would otherwise keep stale stamps trusted) and
	// catches up on anything missed.
	pgFeedHeartbeat = time.Second
	// pgFeedMaxBackoff bounds the pause between reconnection attempts.
	pgFeedMaxBackoff = 2 * time.Second
	// pgFeedName is the feed connection's application_name.
	pgFeedName = "caddy-cognito changes"
)

// startPgFeed starts the feed and waits (at most wait) for its first
// connection, so a store that opens with PostgreSQL up starts trusted.
func startPgFeed(cfg *pgx.ConnConfig, log *zap.Logger, wait, heartbeat time.Duration) *pgFeed {
	cfg = cfg.Copy()
	if cfg.RuntimeParams["application_name"] == "caddy-cognito" {
		cfg.RuntimeParams["application_name"] = pgFeedName // seen in pg_stat_activity
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &pgFeed{cfg: cfg, log: log, heartbeat: heartbeat, first: make(chan struct{}), cancel: cancel, done: make(chan struct{})}
	go f.run(ctx)
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-f.first:
	case <-t.C:
	}
	return f
}

func (f *pgFeed) stop() {
	f.cancel()
	<-f.done
}

// stamp is the feed's part of a Stamp: the counter while live, a value
// never seen before otherwise.
func (f *pgFeed) stamp(local uint64) Stamp {
	n := f.counter.Load()
	if !f.live.Load() {
		return Stamp{local: local, external: n, unknown: f.unknown.Add(1)}
	}
	return Stamp{local: local, external: n}
}

// advance publishes n if it is newer than what was seen.
func (f *pgFeed) advance(n int64) {
	for {
		cur := f.counter.Load()
		if n <= cur || f.counter.CompareAndSwap(cur, n) {
			return
		}
	}
}

func (f *pgFeed) run(ctx context.Context) {
	defer close(f.done)
	firstDone := false
	signalFirst := func() {
		if !firstDone {
			firstDone = true
			close(f.first)
		}
	}
	backoff := 50 * time.Millisecond
	down := false
	for {
		wasLive, err := f.listen(ctx, signalFirst)
		f.live.Store(false)
		signalFirst()
		if ctx.Err() != nil {
			return
		}
		if wasLive {
			backoff = 50 * time.Millisecond
		}
		if !down || wasLive {
			// once per outage: the error says why, never the DSN's password
			f.log.Warn("change notifications from PostgreSQL interrupted; caches are bypassed until they resume", zap.Error(err))
		}
		down = true
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, pgFeedMaxBackoff)
	}
}

// listen runs one connection: LISTEN, read the counter, go live, then
// follow notifications until the connection fails. wasLive says whether
// it got that far.
func (f *pgFeed) listen(ctx context.Context, live func()) (wasLive bool, err error) {
	conn, err := pgx.ConnectConfig(ctx, f.cfg)
	if err != nil {
		return false, err
	}
	f.connects.Add(1)
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = conn.Close(cctx) // the connection is being abandoned either way
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+pgChannel); err != nil {
		return false, err
	}
	if err := f.catchUp(ctx, conn); err != nil {
		return false, err
	}
	f.live.Store(true)
	live()
	f.log.Debug("following PostgreSQL change notifications", zap.Int64("counter", f.counter.Load()))
	for {
		wctx, cancel := context.WithTimeout(ctx, f.heartbeat)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			if v, perr := strconv.ParseInt(n.Payload, 10, 64); perr == nil {
				f.advance(v)
			} else if err := f.catchUp(ctx, conn); err != nil {
				return true, err
			}
		case ctx.Err() != nil:
			return true, ctx.Err()
		case errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err):
			if err := f.catchUp(ctx, conn); err != nil {
				return true, err
			}
			f.beats.Add(1)
		default:
			return true, err
		}
	}
}

// catchUp reads the counter on the feed's own connection.
func (f *pgFeed) catchUp(ctx context.Context, conn *pgx.Conn) error {
	cctx, cancel := context.WithTimeout(ctx, max(f.heartbeat, pgFeedHeartbeat))
	defer cancel()
	var n int64
	if err := conn.QueryRow(cctx, `SELECT n FROM change_counter WHERE id = 1`).Scan(&n); err != nil {
		return err
	}
	f.advance(n)
	return nil
}
