package netfault

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// linkTo is a Links policy for one peer whose state a test sets.
type linkTo struct{ state atomic.Uint32 }

func (l *linkTo) set(s State) { l.state.Store(uint32(s)) }

func (l *linkTo) links() Links {
	return func(string) State { return State(l.state.Load()) }
}

// listen accepts connections on loopback and hands them over; it closes them when t ends.
func listen(t *testing.T) (addr string, accepted <-chan net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan net.Conn, 8)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			ch <- c
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		close(ch)
		for c := range ch {
			c.Close()
		}
	})
	return ln.Addr().String(), ch
}

func acceptOne(t *testing.T, accepted <-chan net.Conn) net.Conn {
	t.Helper()
	select {
	case c := <-accepted:
		t.Cleanup(func() { c.Close() })
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no connection arrived")
		return nil
	}
}

// mustTimeout fails t unless err is what a real connection returns when its deadline passes.
func mustTimeout(t *testing.T, what string, err error) {
	t.Helper()
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("%s: %v, want a timeout", what, err)
	}
}

// readsNothing checks that nothing arrives on c for d (the read times out, no EOF, no data).
func readsNothing(t *testing.T, what string, c net.Conn, d time.Duration) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if n > 0 {
		t.Fatalf("%s: read %q", what, buf[:n])
	}
	mustTimeout(t, what, err)
	c.SetReadDeadline(time.Time{})
}

// roundTrip checks that bytes cross from a to b.
func roundTrip(t *testing.T, what string, a, b net.Conn) {
	t.Helper()
	if _, err := a.Write([]byte("ping")); err != nil {
		t.Fatalf("%s: write: %v", what, err)
	}
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(b, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("%s: read %q, %v", what, buf, err)
	}
	b.SetReadDeadline(time.Time{})
}

func TestBlackholeIsSilent(t *testing.T) {
	addr, accepted := listen(t)
	link := new(linkTo)
	allow := link.links().Allow()
	c, err := allow.Dial(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	server := acceptOne(t, accepted)
	roundTrip(t, "open, out", c, server)
	roundTrip(t, "open, in", server, c)

	link.set(Blackhole)
	if n, err := c.Write([]byte("lost")); n != 4 || err != nil {
		t.Fatalf("write into a black hole: %d, %v; want it to succeed silently", n, err)
	}
	readsNothing(t, "the far end, after a write into the black hole", server, 200*time.Millisecond)
	if _, err := server.Write([]byte("also lost")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	readsNothing(t, "a read with a deadline", c, 200*time.Millisecond)
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Fatalf("the read returned after %v, before its deadline", d)
	}

	// A read blocked without a deadline returns when one is set meanwhile, as on a real socket.
	errc := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 8))
		errc <- err
	}()
	select {
	case err := <-errc:
		t.Fatalf("a read without a deadline returned: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	select {
	case err := <-errc:
		mustTimeout(t, "a read whose deadline was set while it waited", err)
	case <-time.After(5 * time.Second):
		t.Fatal("the blocked read ignored the deadline set meanwhile")
	}
	c.SetReadDeadline(time.Time{})

	// A new dial hangs until its timeout, as when its SYN is lost; nothing reaches the listener.
	start = time.Now()
	if _, err := allow.DialTimeout(addr, 300*time.Millisecond); err == nil {
		t.Fatal("dial into a black hole succeeded")
	} else {
		mustTimeout(t, "dial into a black hole", err)
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Fatalf("the dial failed after %v, before its timeout", d)
	}
	select {
	case s := <-accepted:
		s.Close()
		t.Fatal("a dial into a black hole reached the listener")
	default:
	}

	// Healed: the old connection stays dead (its peer may have given up on it); a fresh dial works.
	link.set(Open)
	if _, err := c.Write([]byte("still lost")); err != nil {
		t.Fatal(err)
	}
	readsNothing(t, "the far end of the old connection after healing", server, 200*time.Millisecond)
	readsNothing(t, "the old connection after healing", c, 100*time.Millisecond)
	fresh, err := allow.DialTimeout(addr, time.Second)
	if err != nil {
		t.Fatalf("dial after healing: %v", err)
	}
	defer fresh.Close()
	freshServer := acceptOne(t, accepted)
	roundTrip(t, "fresh, out", fresh, freshServer)
	roundTrip(t, "fresh, in", freshServer, fresh)
}

func TestBlackholeCloseWakesWaitersAndTellsThePeerNothing(t *testing.T) {
	addr, accepted := listen(t)
	link := new(linkTo)
	c, err := link.links().Allow().Dial(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	server := acceptOne(t, accepted)
	link.set(Blackhole)
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 8))
		errc <- err
	}()
	select {
	case err := <-errc:
		t.Fatalf("a read from the black hole returned: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read on a closed connection: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not wake a read waiting on the black hole")
	}
	// The FIN was lost: the far end sees neither EOF nor a reset.
	readsNothing(t, "the far end of a connection closed inside the black hole", server, 200*time.Millisecond)
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
}

func TestBlackholeSendBufferFills(t *testing.T) {
	addr, accepted := listen(t)
	link := new(linkTo)
	link.set(BlackholeConnected)
	c, err := link.links().Allow().Dial(context.Background(), addr)
	if err != nil {
		t.Fatalf("dial behind a middlebox that answers: %v", err)
	}
	defer c.Close()
	server := acceptOne(t, accepted)
	readsNothing(t, "the far end of a connection dialled into a black hole", server, 100*time.Millisecond)
	c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	n, err := c.Write(make([]byte, sendBuffer+1000))
	if n != sendBuffer {
		t.Fatalf("wrote %d bytes into the black hole, want a send buffer's worth (%d)", n, sendBuffer)
	}
	mustTimeout(t, "a write past the send buffer", err)
}

func TestOneWayCuts(t *testing.T) {
	addr, accepted := listen(t)
	for _, tc := range []struct {
		state           State
		sends, receives bool
	}{
		{DropSend, false, true},
		{DropReceive, true, false},
	} {
		t.Run(tc.state.String(), func(t *testing.T) {
			link := new(linkTo)
			allow := link.links().Allow()
			c, err := allow.Dial(context.Background(), addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			server := acceptOne(t, accepted)
			link.set(tc.state)
			if s := allow.State(addr); s != tc.state || s.Sends() != tc.sends || s.Receives() != tc.receives {
				t.Fatalf("state %v (sends %v, receives %v)", s, s.Sends(), s.Receives())
			}
			if tc.sends {
				roundTrip(t, "this end to the peer", c, server)
			} else {
				if _, err := c.Write([]byte("lost")); err != nil {
					t.Fatal(err)
				}
				readsNothing(t, "the peer", server, 200*time.Millisecond)
			}
			if tc.receives {
				roundTrip(t, "the peer to this end", server, c)
			} else {
				if _, err := server.Write([]byte("lost")); err != nil {
					t.Fatal(err)
				}
				readsNothing(t, "this end", c, 200*time.Millisecond)
			}
			if _, err := allow.DialTimeout(addr, 100*time.Millisecond); err == nil {
				t.Fatal("a dial over a one-way cut completed its handshake")
			}
		})
	}
}

func TestHangingDialCompletesWhenTheLinkOpens(t *testing.T) {
	addr, accepted := listen(t)
	link := new(linkTo)
	link.set(Blackhole)
	allow := link.links().Allow()
	time.AfterFunc(100*time.Millisecond, func() { link.set(Open) })
	start := time.Now()
	c, err := allow.DialTimeout(addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial across the healing: %v", err)
	}
	defer c.Close()
	// Like a real SYN, it got through when it was resent (after 1 s), not at once.
	if d := time.Since(start); d < 900*time.Millisecond || d > 4*time.Second {
		t.Fatalf("the dial completed after %v, want about 1 s (the first SYN resend)", d)
	}
	roundTrip(t, "after the dial completed", c, acceptOne(t, accepted))
}

func TestStateOfPlainAndLinksAllows(t *testing.T) {
	var cut atomic.Bool
	addrIgnoring := Allow(func(string) bool { return !cut.Load() })
	byAddress := Allow(func(a string) bool { return a != "10.0.0.1:1" })
	if s := addrIgnoring.State("10.0.0.1:1"); s != Open {
		t.Fatalf("open plain allow: %v", s)
	}
	cut.Store(true)
	if s := addrIgnoring.State("10.0.0.1:1"); s != Cut {
		t.Fatalf("a plain allow that refuses everything: %v, want cut", s)
	}
	if s, o := byAddress.State("10.0.0.1:1"), byAddress.State("10.0.0.2:1"); s != Cut || o != Open {
		t.Fatalf("a plain allow by address: %v %v, want cut open", s, o)
	}
	var nilAllow Allow
	if s := nilAllow.State("10.0.0.1:1"); s != Open {
		t.Fatalf("nil allow: %v", s)
	}
	for _, want := range []State{Open, Cut, Blackhole, BlackholeConnected, DropSend, DropReceive} {
		a := Links(func(string) State { return want }).Allow()
		if got := a.State("10.0.0.1:1"); got != want {
			t.Fatalf("links in state %v reads back as %v", want, got)
		}
		if a("10.0.0.1:1") != (want == Open) {
			t.Fatalf("links in state %v: allow = %v", want, a("10.0.0.1:1"))
		}
	}
}

func TestLoudCutStillClosesAfterBlackholeSupport(t *testing.T) {
	addr, accepted := listen(t)
	link := new(linkTo)
	allow := link.links().Allow()
	c, err := allow.Dial(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	server := acceptOne(t, accepted)
	link.set(Cut)
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, ErrCut) {
		t.Fatalf("read over a cut link: %v", err)
	}
	server.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := server.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the far end of a loudly cut connection: %v, want it closed", err)
	}
	start := time.Now()
	if _, err := allow.DialTimeout(addr, 5*time.Second); !errors.Is(err, ErrCut) || time.Since(start) > time.Second {
		t.Fatalf("dial over a cut link: %v after %v, want ErrCut at once", err, time.Since(start))
	}
}
