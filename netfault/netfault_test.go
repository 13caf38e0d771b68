package netfault

import (
	"context"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

func TestCutLinkFailsDialsAndOpenConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 2)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	var cut atomic.Bool
	allow := Allow(func(string) bool { return !cut.Load() })
	c, err := allow.Dial(context.Background(), ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server := <-accepted
	defer server.Close()
	if _, err := c.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	cut.Store(true)
	if _, err := c.Write([]byte("x")); !errors.Is(err, ErrCut) {
		t.Fatalf("write over a cut link: %v", err)
	}
	// The far end sees the connection close.
	server.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 8)
	n, _ := io.ReadAtLeast(server, buf, 2)
	if _, err := server.Read(buf[n:]); err == nil {
		t.Fatal("the far end still reads from a cut connection")
	}
	if _, err := allow.DialTimeout(ln.Addr().String(), time.Second); !errors.Is(err, ErrCut) {
		t.Fatalf("dial over a cut link: %v", err)
	}
	cut.Store(false)
	c2, err := allow.DialTimeout(ln.Addr().String(), time.Second)
	if err != nil {
		t.Fatalf("dial after healing: %v", err)
	}
	c2.Close()
}
