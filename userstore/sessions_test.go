package userstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// testClock is a pinned store clock that tests move by hand; safe for the
// concurrent test.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

var sessT0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func openSessionStore(t *testing.T) (*Store, *testClock, *User) {
	t.Helper()
	clk := &testClock{t: sessT0}
	s := openTest(t, "", func(o *Options) { o.Now = clk.Now })
	u := mustUser(t, s, NewUser{Username: "alice"})
	return s, clk, u
}

// hashOf is what the login handler does with the cookie value.
func hashOf(cookie string) string {
	h := sha256.Sum256([]byte(cookie))
	return hex.EncodeToString(h[:])
}

// newSess is a valid session for u created at sessT0: idle 30 min, absolute
// 8 h, access token good for 1 h.
func newSess(u *User, cookie string) Session {
	return Session{
		IDHash: hashOf(cookie), UserID: u.ID, Issuer: "https://cognito-idp.eu-west-1.amazonaws.com/pool", Sub: "sub-" + u.Username, ClientID: "client-1",
		CreatedAt: sessT0, LastSeenAt: sessT0,
		IdleExpiresAt: sessT0.Add(30 * time.Minute), AbsoluteExpiresAt: sessT0.Add(8 * time.Hour),
		AccessExpiresAt: sessT0.Add(time.Hour),
		RefreshToken:    []byte("ciphertext-1"), IDTokenClaims: json.RawMessage(`{"sub":"sub-` + u.Username + `","email":"a@example.com"}`),
		UserAgent: "Mozilla/5.0", RemoteIP: "192.0.2.1",
	}
}

func mustCreateSession(t *testing.T, s *Store, sess Session) {
	t.Helper()
	if err := s.CreateSession(context.Background(), sess); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
}

func sameSession(a, b *Session) error {
	switch {
	case a.IDHash != b.IDHash || a.UserID != b.UserID || a.Issuer != b.Issuer || a.Sub != b.Sub:
		return fmt.Errorf("ids differ: %s/%s/%s/%s vs %s/%s/%s/%s", a.IDHash, a.UserID, a.Issuer, a.Sub, b.IDHash, b.UserID, b.Issuer, b.Sub)
	case !a.CreatedAt.Equal(b.CreatedAt) || !a.LastSeenAt.Equal(b.LastSeenAt) || !a.IdleExpiresAt.Equal(b.IdleExpiresAt) ||
		!a.AbsoluteExpiresAt.Equal(b.AbsoluteExpiresAt) || !a.AccessExpiresAt.Equal(b.AccessExpiresAt):
		return fmt.Errorf("times differ:\n%+v\n%+v", a, b)
	case !bytes.Equal(a.RefreshToken, b.RefreshToken):
		return fmt.Errorf("refresh token %q vs %q", a.RefreshToken, b.RefreshToken)
	case string(a.IDTokenClaims) != string(b.IDTokenClaims):
		return fmt.Errorf("claims %s vs %s", a.IDTokenClaims, b.IDTokenClaims)
	case a.UserAgent != b.UserAgent || a.RemoteIP != b.RemoteIP:
		return fmt.Errorf("ua/ip %q %q vs %q %q", a.UserAgent, a.RemoteIP, b.UserAgent, b.RemoteIP)
	}
	return nil
}

func TestSessionCreateGet(t *testing.T) {
	bothBackends(t, func(t *testing.T) {
		s, _, u := openSessionStore(t)
		ctx := context.Background()
		in := newSess(u, "cookie-1")
		in.CreatedAt = sessT0.Add(123456789 * time.Nanosecond).In(time.FixedZone("X", 3600))
		in.LastSeenAt = time.Time{} // defaults to CreatedAt
		mustCreateSession(t, s, in)

		got, err := s.GetSession(ctx, in.IDHash)
		if err != nil {
			t.Fatal(err)
		}
		want := in
		want.CreatedAt = sessT0.Add(123456 * time.Microsecond)
		want.LastSeenAt = want.CreatedAt
		if err := sameSession(got, &want); err != nil {
			t.Fatal(err)
		}
		if got.CreatedAt.Location() != time.UTC || got.CreatedAt.Nanosecond()%1000 != 0 {
			t.Fatalf("created_at %v: want UTC at microsecond precision", got.CreatedAt)
		}

		// Creating a session writes no audit row: the caller audits the login.
		if a := auditActions(t, s, u.ID); strings.Join(a, ",") != ActionUserCreate {
			t.Fatalf("audit after CreateSession: %v", a)
		}

		dis := mustUser(t, s, NewUser{Username: "dora", Disabled: true})
		for _, tc := range []struct {
			name string
			sess Session
			want error
		}{
			{"duplicate id hash", newSess(u, "cookie-1"), ErrConflict},
			{"duplicate id hash, other user", newSess(mustUser(t, s, NewUser{Username: "bob"}), "cookie-1"), ErrConflict},
			{"nonexistent user", newSess(&User{ID: "u_missing", Username: "x"}, "cookie-2"), ErrNotFound},
			{"disabled user", newSess(dis, "cookie-3"), ErrDisabled},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if err := s.CreateSession(ctx, tc.sess); !errors.Is(err, tc.want) {
					t.Fatalf("CreateSession = %v, want %v", err, tc.want)
				}
			})
		}
		if _, err := s.GetSession(ctx, hashOf("cookie-2")); !errors.Is(err, ErrNotFound) {
			t.Fatalf("GetSession(never created) = %v, want ErrNotFound", err)
		}
		// The duplicate did not overwrite the original.
		if got, err := s.GetSession(ctx, in.IDHash); err != nil || got.UserID != u.ID {
			t.Fatalf("after duplicate: %+v, %v", got, err)
		}
	})
}

func TestCreateSessionInvalid(t *testing.T) {
	bothBackends(t, func(t *testing.T) {
		s, _, u := openSessionStore(t)
		ctx := context.Background()
		for _, tc := range []struct {
			name string
			mod  func(*Session)
		}{
			{"empty id hash", func(x *Session) { x.IDHash = "" }},
			{"short id hash", func(x *Session) { x.IDHash = x.IDHash[:63] }},
			{"upper-case id hash", func(x *Session) { x.IDHash = strings.ToUpper(x.IDHash) }},
			{"raw cookie instead of hash", func(x *Session) { x.IDHash = strings.Repeat("z", 64) }},
			{"empty user", func(x *Session) { x.UserID = "" }},
			{"empty issuer", func(x *Session) { x.Issuer = "" }},
			{"empty sub", func(x *Session) { x.Sub = " " }},
			{"zero created", func(x *Session) { x.CreatedAt = time.Time{} }},
			{"zero idle", func(x *Session) { x.IdleExpiresAt = time.Time{} }},
			{"zero absolute", func(x *Session) { x.AbsoluteExpiresAt = time.Time{} }},
			{"zero access", func(x *Session) { x.AccessExpiresAt = time.Time{} }},
			{"absolute before created", func(x *Session) { x.AbsoluteExpiresAt = x.CreatedAt.Add(-time.Second) }},
			{"idle before created", func(x *Session) { x.IdleExpiresAt = x.CreatedAt.Add(-time.Second) }},
			{"claims not JSON", func(x *Session) { x.IDTokenClaims = json.RawMessage(`{"sub":`) }},
			{"claims not an object", func(x *Session) { x.IDTokenClaims = json.RawMessage(`["sub"]`) }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				sess := newSess(u, "cookie-"+tc.name)
				tc.mod(&sess)
				if err := s.CreateSession(ctx, sess); !errors.Is(err, ErrInvalid) {
					t.Fatalf("CreateSession = %v, want ErrInvalid", err)
				}
			})
		}
		if l, err := s.ListUserSessions(ctx, u.ID); err != nil || len(l) != 0 {
			t.Fatalf("invalid sessions were stored: %+v, %v", l, err)
		}
	})
}

func TestSessionOptionalFieldsAndSanitising(t *testing.T) {
	bothBackends(t, func(t *testing.T) {
		s, _, u := openSessionStore(t)
		ctx := context.Background()
		longUA := strings.Repeat("a", 511) + "é" + strings.Repeat("b", 100) // é straddles byte 512
		for i, tc := range []struct {
			name           string
			ua, ip         string
			rt             []byte
			claims         json.RawMessage
			idle           time.Duration
			wantUA, wantIP string
			wantClaims     string
			wantIdle       time.Duration
		}{
			{"plain", "Mozilla/5.0 (X11)", "2001:db8::1", []byte("ct"), json.RawMessage(`{"a":1}`), 30 * time.Minute,
				"Mozilla/5.0 (X11)", "2001:db8::1", `{"a":1}`, 30 * time.Minute},
			{"control characters stripped", "Moz\r\nSet-Cookie: x\x00\x7f", "192.0.2.1\n", nil, nil, 30 * time.Minute,
				"MozSet-Cookie: x", "192.0.2.1", `{}`, 30 * time.Minute},
			{"invalid UTF-8 dropped", "ab\xffcd", "\xfe10.0.0.1", []byte{}, nil, 30 * time.Minute,
				"abcd", "10.0.0.1", `{}`, 30 * time.Minute},
			{"user agent truncated on a rune boundary", longUA, strings.Repeat("9", 200), []byte{0, 1, 2}, nil, 30 * time.Minute,
				strings.Repeat("a", 511), strings.Repeat("9", maxRemoteIPLen), `{}`, 30 * time.Minute},
			{"idle capped at absolute", "", "", nil, nil, 9 * time.Hour,
				"", "", `{}`, 8 * time.Hour},
		} {
			t.Run(tc.name, func(t *testing.T) {
				sess := newSess(u, fmt.Sprint("cookie-", i))
				sess.UserAgent, sess.RemoteIP, sess.RefreshToken, sess.IDTokenClaims = tc.ua, tc.ip, tc.rt, tc.claims
				sess.IdleExpiresAt = sessT0.Add(tc.idle)
				mustCreateSession(t, s, sess)
				got, err := s.GetSession(ctx, sess.IDHash)
				if err != nil {
					t.Fatal(err)
				}
				if got.UserAgent != tc.wantUA || got.RemoteIP != tc.wantIP || string(got.IDTokenClaims) != tc.wantClaims {
					t.Fatalf("got ua %q ip %q claims %s; want %q %q %s", got.UserAgent, got.RemoteIP, got.IDTokenClaims, tc.wantUA, tc.wantIP, tc.wantClaims)
				}
				if len(got.UserAgent) > maxUserAgentLen {
					t.Fatalf("user agent %d bytes", len(got.UserAgent))
				}
				if got.RefreshToken == nil || !bytes.Equal(got.RefreshToken, tc.rt) {
					t.Fatalf("refresh token %#v, want %#v (non-nil)", got.RefreshToken, tc.rt)
				}
				if !got.IdleExpiresAt.Equal(sessT0.Add(tc.wantIdle)) {
					t.Fatalf("idle expiry %v, want %v", got.IdleExpiresAt, sessT0.Add(tc.wantIdle))
				}
			})
		}
	})
}

func TestSessionExpiryByStoreClock(t *testing.T) {
	bothBackends(t, func(t *testing.T) {
		s, clk, u := openSessionStore(t)
		ctx := context.Background()
		sess := newSess(u, "c") // idle at +30m, absolute at +8h
		mustCreateSession(t, s, sess)
		for _, tc := range []struct {
			name  string
			at    time.Duration // store clock, from sessT0
			found bool
		}{
			{"at creation", 0, true},
			{"just before idle expiry", 30*time.Minute - time.Microsecond, true},
			{"at idle expiry", 30 * time.Minute, false},
			{"after idle expiry", time.Hour, false},
			{"clock back before idle expiry", 29 * time.Minute, true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				clk.Set(sessT0.Add(tc.at))
				_, err := s.GetSession(ctx, sess.IDHash)
				if tc.found && err != nil || !tc.found && !errors.Is(err, ErrNotFound) {
					t.Fatalf("GetSession at +%v = %v, found want %v", tc.at, err, tc.found)
				}
			})
		}

		// Absolute expiry: keep touching so idle never lapses; at +8h it ends
		// anyway.
		abs := newSess(u, "abs")
		mustCreateSession(t, s, abs)
		for at := time.Duration(0); at < 8*time.Hour; at += 20 * time.Minute {
			clk.Set(sessT0.Add(at))
			if err := s.TouchSession(ctx, abs.IDHash, sessT0.Add(at), sessT0.Add(at+30*time.Minute)); err != nil {
				t.Fatalf("touch at +%v: %v", at, err)
			}
		}
		clk.Set(sessT0.Add(8*time.Hour - time.Microsecond))
		got, err := s.GetSession(ctx, abs.IDHash)
		if err != nil {
			t.Fatalf("just before absolute expiry: %v", err)
		}
		if !got.IdleExpiresAt.Equal(abs.AbsoluteExpiresAt) {
			t.Fatalf("idle expiry %v, want capped at absolute %v", got.IdleExpiresAt, abs.AbsoluteExpiresAt)
		}
		clk.Set(sessT0.Add(8 * time.Hour))
		if _, err := s.GetSession(ctx, abs.IDHash); !errors.Is(err, ErrNotFound) {
			t.Fatalf("at absolute expiry: %v, want ErrNotFound", err)
		}
	})
}

func TestTouchSession(t *testing.T) {
	bothBackends(t, func(t *testing.T) {
		s, clk, u := openSessionStore(t)
		ctx := context.Background()
		sess := newSess(u, "c")
		mustCreateSession(t, s, sess)
		type want struct {
			err        error
			seen, idle time.Duration // from sessT0, checked when err == nil
		}
		for _, tc := range []struct {
			name       string
			clock      time.Duration
			seen, idle time.Duration
			hash       string
			want       want
		}{
			{"extends idle", 10 * time.Minute, 10 * time.Minute, 40 * time.Minute, "", want{nil, 10 * time.Minute, 40 * time.Minute}},
			{"never past absolute", 20 * time.Minute, 20 * time.Minute, 20 * time.Hour, "", want{nil, 20 * time.Minute, 8 * time.Hour}},
			{"out of order touch does not move back", 0, 5 * time.Minute, 35 * time.Minute, "", want{nil, 20 * time.Minute, 8 * time.Hour}},
			{"missing session", 0, time.Minute, time.Hour, hashOf("nope"), want{err: ErrNotFound}},
			{"bad hash", 0, time.Minute, time.Hour, "nope", want{err: ErrInvalid}},
			{"idle before last seen", 0, time.Hour, time.Minute, "", want{err: ErrInvalid}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				clk.Set(sessT0.Add(tc.clock))
				h := tc.hash
				if h == "" {
					h = sess.IDHash
				}
				err := s.TouchSession(ctx, h, sessT0.Add(tc.seen), sessT0.Add(tc.idle))
				if !errors.Is(err, tc.want.err) || (tc.want.err == nil) != (err == nil) {
					t.Fatalf("TouchSession = %v, want %v", err, tc.want.err)
				}
				if err != nil {
					return
				}
				got, err := s.GetSession(ctx, sess.IDHash)
				if err != nil {
					t.Fatal(err)
				}
				if !got.LastSeenAt.Equal(sessT0.Add(tc.want.seen)) || !got.IdleExpiresAt.Equal(sessT0.Add(tc.want.idle)) {
					t.Fatalf("last seen +%v idle +%v; want +%v +%v", got.LastSeenAt.Sub(sessT0), got.IdleExpiresAt.Sub(sessT0), tc.want.seen, tc.want.idle)
				}
			})
		}

		// A touch never revives an expired session.
		dead := newSess(u, "dead")
		mustCreateSession(t, s, dead)
		clk.Set(sessT0.Add(time.Hour)) // idle expired at +30m
		if err := s.TouchSession(ctx, dead.IDHash, sessT0.Add(time.Hour), sessT0.Add(2*time.Hour)); !errors.Is(err, ErrNotFound) {
			t.Fatalf("touch of an idle-expired session = %v, want ErrNotFound", err)
		}
		clk.Set(sessT0.Add(10 * time.Minute))
		got, err := s.GetSession(ctx, dead.IDHash)
		if err != nil || !got.IdleExpiresAt.Equal(dead.IdleExpiresAt) {
			t.Fatalf("failed touch changed the session: %+v, %v", got, err)
		}
	})
}

func TestUpdateSessionTokens(t *testing.T) {
	bothBackends(t, func(t *testing.T) {
		s, clk, u := openSessionStore(t)
		ctx := context.Background()
		sess := newSess(u, "c")
		mustCreateSession(t, s, sess)
		origClaims := string(sess.IDTokenClaims)
		for _, tc := range []struct {
			name       string
			hash       string
			rt         []byte
			access     time.Time
			claims     json.RawMessage
			wantErr    error
			wantRT     string
			wantClaims string
		}{
			{"nil keeps refresh token and claims", "", nil, sessT0.Add(2 * time.Hour), nil, nil, "ciphertext-1", origClaims},
			{"new claims, refresh token kept", "", nil, sessT0.Add(3 * time.Hour), json.RawMessage(`{"sub":"x","n":2}`), nil, "ciphertext-1", `{"sub":"x","n":2}`},
			{"rotated refresh token", "", []byte("ciphertext-2"), sessT0.Add(4 * time.Hour), nil, nil, "ciphertext-2", `{"sub":"x","n":2}`},
			{"empty refresh token clears it", "", []byte{}, sessT0.Add(5 * time.Hour), nil, nil, "", `{"sub":"x","n":2}`},
			{"bad claims", "", []byte("zzz"), sessT0.Add(6 * time.Hour), json.RawMessage(`nope`), ErrInvalid, "", `{"sub":"x","n":2}`},
			{"zero access expiry", "", []byte("zzz"), time.Time{}, nil, ErrInvalid, "", `{"sub":"x","n":2}`},
			{"missing session", hashOf("nope"), []byte("zzz"), sessT0.Add(6 * time.Hour), nil, ErrNotFound, "", `{"sub":"x","n":2}`},
		} {
			t.Run(tc.name, func(t *testing.T) {
				h := tc.hash
				if h == "" {
					h = sess.IDHash
				}
				before, err := s.GetSession(ctx, sess.IDHash)
				if err != nil {
					t.Fatal(err)
				}
				err = s.UpdateSessionTokens(ctx, h, tc.rt, tc.access, tc.claims)
				if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
					t.Fatalf("UpdateSessionTokens = %v, want %v", err, tc.wantErr)
				}
				got, err := s.GetSession(ctx, sess.IDHash)
				if err != nil {
					t.Fatal(err)
				}
				if tc.wantErr != nil { // nothing changed
					if err := sameSession(got, before); err != nil {
						t.Fatalf("failed update changed the session: %v", err)
					}
					return
				}
				if string(got.RefreshToken) != tc.wantRT || got.RefreshToken == nil || string(got.IDTokenClaims) != tc.wantClaims ||
					!got.AccessExpiresAt.Equal(tc.access) {
					t.Fatalf("got rt %q claims %s access %v; want %q %s %v", got.RefreshToken, got.IDTokenClaims, got.AccessExpiresAt, tc.wantRT, tc.wantClaims, tc.access)
				}
			})
		}
		clk.Set(sessT0.Add(time.Hour)) // idle-expired
		if err := s.UpdateSessionTokens(ctx, sess.IDHash, []byte("late"), sessT0.Add(9*time.Hour), nil); !errors.Is(err, ErrNotFound) {
			t.Fatalf("update of an expired session = %v, want ErrNotFound", err)
		}
	})
}

func TestDisabledUserLosesSessionsAtOnce(t *testing.T) {
	bothBackends(t, func(t *testing.T) {
		s, clk, u := openSessionStore(t)
		ctx := context.Background()
		sess := newSess(u, "c")
		mustCreateSession(t, s, sess)
		steps := []struct {
			name   string
			do     func() error
			clock  time.Duration
			found  bool
			listed int
		}{
			{"live", nil, 0, true, 1},
			{"disabled", func() error { return s.SetActive(ctx, "admin", u.ID, false) }, 0, false, 1},
			{"re-enabled", func() error { return s.SetActive(ctx, "admin", u.ID, true) }, time.Minute, true, 1},
			{"disabled again", func() error { return s.SetActive(ctx, "admin", u.ID, false) }, time.Minute, false, 1},
			{"expired while disabled", nil, time.Hour, false, 0},
			{"re-enabled after expiry", func() error { return s.SetActive(ctx, "admin", u.ID, true) }, time.Hour, false, 0},
		}
		for _, st := range steps {
			t.Run(st.name, func(t *testing.T) {
				clk.Set(sessT0.Add(st.clock))
				if st.do != nil {
					if err := st.do(); err != nil {
						t.Fatal(err)
					}
				}
				_, err := s.GetSession(ctx, sess.IDHash)
				if st.found && err != nil || !st.found && !errors.Is(err, ErrNotFound) {
					t.Fatalf("GetSession = %v, found want %v", err, st.found)
				}
				terr := s.TouchSession(ctx, sess.IDHash, sessT0.Add(st.clock), sessT0.Add(st.clock+time.Second))
				if st.found && terr != nil || !st.found && !errors.Is(terr, ErrNotFound) {
					t.Fatalf("TouchSession = %v, found want %v", terr, st.found)
				}
				l, err := s.ListUserSessions(ctx, u.ID)
				if err != nil || len(l) != st.listed {
					t.Fatalf("ListUserSessions = %d sessions, %v; want %d", len(l), err, st.listed)
				}
			})
		}
	})
}

func TestDeleteSession(t *testing.T) {
	bothBackends(t, func(t *testing.T) {
		s, _, u := openSessionStore(t)
		ctx := context.Background()
		a, b := newSess(u, "a"), newSess(u, "b")
		mustCreateSession(t, s, a)
		mustCreateSession(t, s, b)
		for _, tc := range []struct {
			name string
			hash string
			want error
		}{
			{"existing", a.IDHash, nil},
			{"again (idempotent)", a.IDHash, nil},
			{"never existed", hashOf("zzz"), nil},
			{"bad hash", "x", ErrInvalid},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if err := s.DeleteSession(ctx, tc.hash); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
					t.Fatalf("DeleteSession = %v, want %v", err, tc.want)
				}
			})
		}
		if _, err := s.GetSession(ctx, a.IDHash); !errors.Is(err, ErrNotFound) {
			t.Fatalf("deleted session: %v", err)
		}
		if _, err := s.GetSession(ctx, b.IDHash); err != nil {
			t.Fatalf("other session: %v", err)
		}
	})
}

func TestDeleteUserSessionsCountsAndAudits(t *testing.T) {
	bothBackends(t, func(t *testing.T) {
		s, clk, u := openSessionStore(t)
		ctx := context.Background()
		bob := mustUser(t, s, NewUser{Username: "bob"})
		for i := range 3 {
			mustCreateSession(t, s, newSess(u, fmt.Sprint("alice-", i)))
		}
		mustCreateSession(t, s, newSess(bob, "bob-0"))
		clk.Set(sessT0.Add(time.Hour)) // alice's sessions are expired but still stored: they count
		for _, tc := range []struct {
			name    string
			user    string
			want    int
			wantErr error
		}{
			{"alice", u.ID, 3, nil},
			{"alice again", u.ID, 0, nil},
			{"unknown user", "u_missing", 0, ErrNotFound},
		} {
			t.Run(tc.name, func(t *testing.T) {
				n, err := s.DeleteUserSessions(ctx, "admin:carol", tc.user)
				if n != tc.want || !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
					t.Fatalf("DeleteUserSessions = %d, %v; want %d, %v", n, err, tc.want, tc.wantErr)
				}
			})
		}
		es, err := s.AuditFor(ctx, u.ID, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) != 3 || es[0].Action != ActionSessionRevokeAll || es[1].Action != ActionSessionRevokeAll ||
			es[0].Actor != "admin:carol" || es[1].Detail != `{"count":3}` || es[0].Detail != `{"count":0}` {
			t.Fatalf("audit %+v", es)
		}
		if a := auditActions(t, s, "u_missing"); len(a) != 0 {
			t.Fatalf("audit for a failed revoke: %v", a)
		}
		clk.Set(sessT0)
		if _, err := s.GetSession(ctx, hashOf("bob-0")); err != nil {
			t.Fatalf("bob's session: %v", err)
		}
	})
}

func TestListUserSessionsHidesRefreshToken(t *testing.T) {
	bothBackends(t, func(t *testing.T) {
		s, clk, u := openSessionStore(t)
		ctx := context.Background()
		bob := mustUser(t, s, NewUser{Username: "bob"})
		for i := range 3 {
			sess := newSess(u, fmt.Sprint("a", i))
			sess.CreatedAt = sessT0.Add(time.Duration(i) * time.Minute)
			sess.LastSeenAt = sess.CreatedAt
			if i == 0 {
				sess.IdleExpiresAt = sessT0.Add(2 * time.Minute) // expires first
			}
			mustCreateSession(t, s, sess)
		}
		mustCreateSession(t, s, newSess(bob, "b"))
		for _, tc := range []struct {
			name  string
			user  string
			clock time.Duration
			want  []string // cookies, newest first
		}{
			{"all live", u.ID, 2 * time.Minute / 2, []string{"a2", "a1", "a0"}},
			{"one expired", u.ID, 2 * time.Minute, []string{"a2", "a1"}},
			{"other user", bob.ID, 0, []string{"b"}},
			{"unknown user", "u_missing", 0, []string{}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				clk.Set(sessT0.Add(tc.clock))
				l, err := s.ListUserSessions(ctx, tc.user)
				if err != nil || l == nil {
					t.Fatalf("ListUserSessions = %v, %v", l, err)
				}
				var got []string
				for _, x := range l {
					if x.RefreshToken != nil {
						t.Fatalf("listing carries the refresh token %q", x.RefreshToken)
					}
					if len(x.IDTokenClaims) == 0 || x.UserAgent == "" || x.CreatedAt.IsZero() {
						t.Fatalf("listing lost fields: %+v", x)
					}
					got = append(got, x.IDHash)
				}
				var want []string
				for _, c := range tc.want {
					want = append(want, hashOf(c))
				}
				if strings.Join(got, ",") != strings.Join(want, ",") {
					t.Fatalf("listed %v, want %v", got, tc.want)
				}
			})
		}
	})
}

func TestPurgeExpiredSessions(t *testing.T) {
	bothBackends(t, func(t *testing.T) {
		s, _, u := openSessionStore(t)
		ctx := context.Background()
		// idle at +30m, +60m, +90m; absolute at +8h for all; one with absolute at +45m.
		for i, idle := range []time.Duration{30 * time.Minute, 60 * time.Minute, 90 * time.Minute} {
			sess := newSess(u, fmt.Sprint("p", i))
			sess.IdleExpiresAt = sessT0.Add(idle)
			mustCreateSession(t, s, sess)
		}
		short := newSess(u, "short")
		short.AbsoluteExpiresAt, short.IdleExpiresAt = sessT0.Add(45*time.Minute), sessT0.Add(45*time.Minute)
		mustCreateSession(t, s, short)
		for _, tc := range []struct {
			name    string
			now     time.Time
			want    int
			wantErr error
		}{
			{"nothing yet", sessT0.Add(29 * time.Minute), 0, nil},
			{"idle boundary is expired", sessT0.Add(30 * time.Minute), 1, nil},
			{"absolute", sessT0.Add(50 * time.Minute), 1, nil},
			{"again: nothing", sessT0.Add(50 * time.Minute), 0, nil},
			{"rest", sessT0.Add(9 * time.Hour), 2, nil},
			{"zero now", time.Time{}, 0, ErrInvalid},
		} {
			t.Run(tc.name, func(t *testing.T) {
				n, err := s.PurgeExpiredSessions(ctx, tc.now)
				if n != tc.want || !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
					t.Fatalf("PurgeExpiredSessions(+%v) = %d, %v; want %d, %v", tc.now.Sub(sessT0), n, err, tc.want, tc.wantErr)
				}
			})
		}
		var left int
		if err := s.db.QueryRow(`SELECT COUNT(*) FROM sessions`).Scan(&left); err != nil || left != 0 {
			t.Fatalf("%d sessions left, %v", left, err)
		}
	})
}

// 100 goroutines touch and read sessions at once: every call succeeds (no
// "database is locked"), and the final state is the latest touch.
func TestSessionsConcurrentTouchAndGet(t *testing.T) {
	bothBackends(t, func(t *testing.T) {
		s, clk, u := openSessionStore(t)
		ctx := context.Background()
		const sessions, workers, rounds = 5, 100, 10
		for i := range sessions {
			mustCreateSession(t, s, newSess(u, fmt.Sprint("c", i)))
		}
		clk.Set(sessT0.Add(time.Minute))
		gate := make(chan struct{})
		errs := make(chan error, workers*rounds*2)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-gate
				h := hashOf(fmt.Sprint("c", w%sessions))
				for r := range rounds {
					seen := sessT0.Add(time.Duration(w*rounds+r) * time.Millisecond)
					if err := s.TouchSession(ctx, h, seen, seen.Add(30*time.Minute)); err != nil {
						errs <- fmt.Errorf("touch: %w", err)
					}
					if _, err := s.GetSession(ctx, h); err != nil {
						errs <- fmt.Errorf("get: %w", err)
					}
				}
			}()
		}
		close(gate)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("%v (locked: %v)", err, strings.Contains(err.Error(), "locked"))
		}
		// Touches never move back, so each session ends at its latest touch.
		for i := range sessions {
			got, err := s.GetSession(ctx, hashOf(fmt.Sprint("c", i)))
			if err != nil {
				t.Fatal(err)
			}
			last := 0
			for w := i; w < workers; w += sessions {
				last = w*rounds + rounds - 1
			}
			if want := sessT0.Add(time.Duration(last) * time.Millisecond); !got.LastSeenAt.Equal(want) {
				t.Errorf("session %d last seen %v, want %v", i, got.LastSeenAt, want)
			}
		}
	})
}

// A database written by the previous build (schema 1, no sessions table)
// gains the table on Open, keeps its users, and audits the one new step.
func TestSessionsMigrationFromV1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.db")
	raw, err := sql.Open(sqliteDriverName, path)
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range migrations[0].stmts {
		if _, err := raw.Exec(strings.ReplaceAll(stmt, "{{AUTOID}}", sqliteDialect.autoID)); err != nil {
			t.Fatal(err)
		}
	}
	for _, stmt := range []string{
		`INSERT INTO users (id, username, username_lower, created_at, updated_at) VALUES ('u_old', 'old', 'old', '2025-01-01T00:00:00.000000Z', '2025-01-01T00:00:00.000000Z')`,
		`INSERT INTO audit_log (at, actor, action, target) VALUES ('2025-01-01T00:00:00.000000Z', 'system', 'schema.migrate', 'v1')`,
		`PRAGMA user_version = 1`,
	} {
		if _, err := raw.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	closeOK(t, raw)

	clk := &testClock{t: sessT0}
	s := openTest(t, path, func(o *Options) { o.Now = clk.Now })
	ctx := context.Background()
	es, _ := s.Audit(ctx, 100)
	if n := countAction(es, ActionSchemaMigrate); n != SchemaVersion() || es[0].Target != fmt.Sprintf("v%d", SchemaVersion()) {
		t.Fatalf("%d schema.migrate rows (newest %+v), want %d", n, es[0], SchemaVersion())
	}
	old, err := s.GetUser(ctx, "u_old")
	if err != nil {
		t.Fatal(err)
	}
	mustCreateSession(t, s, newSess(old, "c"))
	if _, err := s.GetSession(ctx, hashOf("c")); err != nil {
		t.Fatal(err)
	}
	var fk string
	if err := s.db.QueryRow(`SELECT "table" || ':' || on_delete FROM pragma_foreign_key_list('sessions')`).Scan(&fk); err != nil || fk != "users:CASCADE" {
		t.Fatalf("sessions foreign key %q, %v", fk, err)
	}
}

// TestSessionsMigrationAddsClientID: a session stored by schema 3 (before
// sessions were bound to an app client) comes out of the migration with
// an empty ClientID, which no sign-in handler owns, so it ends; new
// sessions must name their client.
func TestSessionsMigrationAddsClientID(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.db")
	raw, err := sql.Open(sqliteDriverName, path)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range migrations[:3] {
		for _, stmt := range m.stmts {
			if _, err := raw.Exec(strings.ReplaceAll(stmt, "{{AUTOID}}", sqliteDialect.autoID)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, stmt := range []string{
		`INSERT INTO users (id, username, username_lower, active, created_at, updated_at) VALUES ('u_old', 'old', 'old', 1, '2025-01-01T00:00:00.000000Z', '2025-01-01T00:00:00.000000Z')`,
		`INSERT INTO sessions (id_hash, user_id, issuer, sub, created_at, last_seen_at, idle_expires_at, absolute_expires_at, access_expires_at, refresh_token)
			VALUES ('` + hashOf("old-cookie") + `', 'u_old', 'https://issuer.example', 'sub-old', '2025-01-01T00:00:00.000000Z', '2025-01-01T00:00:00.000000Z',
			'2999-01-01T00:00:00.000000Z', '2999-01-01T00:00:00.000000Z', '2999-01-01T00:00:00.000000Z', x'00')`,
		`PRAGMA user_version = 3`,
	} {
		if _, err := raw.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	closeOK(t, raw)

	clk := &testClock{t: sessT0}
	s := openTest(t, path, func(o *Options) { o.Now = clk.Now })
	ctx := context.Background()
	sess, err := s.GetSession(ctx, hashOf("old-cookie"))
	if err != nil {
		t.Fatal(err)
	}
	if sess.ClientID != "" || sess.Issuer != "https://issuer.example" {
		t.Errorf("migrated session: client %q issuer %q, want no client", sess.ClientID, sess.Issuer)
	}
	old, err := s.GetUser(ctx, "u_old")
	if err != nil {
		t.Fatal(err)
	}
	noClient := newSess(old, "new-cookie")
	noClient.ClientID = ""
	if err := s.CreateSession(ctx, noClient); !errors.Is(err, ErrInvalid) {
		t.Errorf("session without a client: %v, want ErrInvalid", err)
	}
	withClient := newSess(old, "new-cookie")
	mustCreateSession(t, s, withClient)
	got, err := s.GetSession(ctx, hashOf("new-cookie"))
	if err != nil || got.ClientID != "client-1" {
		t.Errorf("new session: %+v, %v; want client-1", got, err)
	}
}

// TestSessionForwardToken: the forwarded token's ciphertext is kept only
// when given, read back by GetSession, replaced and cleared by
// SetSessionForwardToken, and never listed.
func TestSessionForwardToken(t *testing.T) {
	bothBackends(t, func(t *testing.T) {
		s, _, u := openSessionStore(t)
		ctx := context.Background()
		plain := newSess(u, "cookie-plain")
		mustCreateSession(t, s, plain)
		if got, err := s.GetSession(ctx, plain.IDHash); err != nil || got.ForwardToken != nil {
			t.Fatalf("a session without a forward token: %v, %v", got.ForwardToken, err)
		}
		fw := newSess(u, "cookie-forward")
		fw.ForwardToken = []byte("sealed-1")
		mustCreateSession(t, s, fw)
		if got, err := s.GetSession(ctx, fw.IDHash); err != nil || string(got.ForwardToken) != "sealed-1" {
			t.Fatalf("forward token %q, %v; want sealed-1", got.ForwardToken, err)
		}
		if err := s.SetSessionForwardToken(ctx, fw.IDHash, []byte("sealed-2")); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.GetSession(ctx, fw.IDHash); string(got.ForwardToken) != "sealed-2" {
			t.Fatalf("after the update: %q", got.ForwardToken)
		}
		if list, err := s.ListUserSessions(ctx, u.ID); err != nil || len(list) != 2 || list[0].ForwardToken != nil || list[1].ForwardToken != nil {
			t.Fatalf("ListUserSessions shows forward tokens: %v", err)
		}
		if err := s.SetSessionForwardToken(ctx, fw.IDHash, nil); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.GetSession(ctx, fw.IDHash); got.ForwardToken != nil {
			t.Fatalf("after clearing: %q", got.ForwardToken)
		}
		if err := s.SetSessionForwardToken(ctx, hashOf("no-such-cookie"), []byte("x")); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown session: %v", err)
		}
	})
}

// On PostgreSQL a touch is not a change: the stamp that caches trust
// stays the same on every instance (no notification is sent), while the
// touch itself is stored; any other write still moves the stamp. On
// SQLite a touch is a change like any other write.
func TestTouchIsNotAChange(t *testing.T) {
	bothBackends(t, func(t *testing.T) {
		ctx := context.Background()
		loc := newLocation(t)
		clk := &testClock{t: sessT0}
		a := openTest(t, loc, func(o *Options) { o.Now = clk.Now })
		other := openTest(t, loc, func(o *Options) { o.Now = clk.Now }) // another instance on the same store
		u := mustUser(t, a, NewUser{Username: "alice"})
		sess := newSess(u, "c")
		mustCreateSession(t, a, sess)
		stamp := func(s *Store) Stamp {
			t.Helper()
			st, err := s.Changes(ctx, 0) // 0: looks at the database now
			if err != nil {
				t.Fatal(err)
			}
			return st
		}
		before, otherBefore := stamp(a), stamp(other)
		clk.Set(sessT0.Add(10 * time.Minute))
		if err := a.TouchSession(ctx, sess.IDHash, sessT0.Add(10*time.Minute), sessT0.Add(40*time.Minute)); err != nil {
			t.Fatal(err)
		}
		got, err := other.GetSession(ctx, sess.IDHash)
		if err != nil || !got.IdleExpiresAt.Equal(sessT0.Add(40*time.Minute)) {
			t.Fatalf("the touch is not stored: %+v, %v", got, err)
		}
		quiet := onPostgres(t)
		if moved := stamp(a) != before; moved == quiet {
			t.Errorf("the touch moved the stamp of the store that made it: %v, want %v", moved, !quiet)
		}
		if moved := stamp(other) != otherBefore; moved == quiet {
			t.Errorf("the touch moved another instance's stamp: %v, want %v", moved, !quiet)
		}
		if _, err := a.CreateUser(ctx, "t", NewUser{Username: "bob"}); err != nil {
			t.Fatal(err)
		}
		if stamp(a) == before {
			t.Error("a write after the touch did not move the stamp")
		}
	})
}
