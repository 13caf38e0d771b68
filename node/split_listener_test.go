package node

import (
	"io"
	"net"
	"testing"
	"time"
)

// TestSplitListenerSortsByTheFirstByte: a TLS handshake's first byte goes to the TLS side, any
// other to the plain side, each with the byte given back; a silent connection is closed with the
// listener, not left to its deadline.
func TestSplitListenerSortsByTheFirstByte(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := newSplitListener(ln)
	for _, tc := range []struct {
		first byte
		side  net.Listener
	}{{0x16, s.tls}, {'P', s.plain}} {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte{tc.first, 'x'}); err != nil {
			t.Fatal(err)
		}
		got, err := tc.side.Accept()
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 2)
		if _, err := io.ReadFull(got, b); err != nil || b[0] != tc.first || b[1] != 'x' {
			t.Fatalf("side for %#x read %q, %v", tc.first, b, err)
		}
		got.Close()
	}
	silent, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	// Wait until the silent connection is being sorted, then close the port.
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.mu.Lock()
		n := len(s.pending)
		s.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the silent connection was never accepted")
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.tls.Close()
	silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := silent.Read(make([]byte, 1)); err == nil {
		t.Fatal("the silent connection was not closed with the listener")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the silent connection outlived its listener")
	}
	if _, err := s.plain.Accept(); err == nil {
		t.Fatal("the plain side accepts after the port closed")
	}
}
