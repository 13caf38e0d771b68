// Package netfault lets tests cut links between nodes running in one process. A node given an
// Allow function dials through it and wraps what it dials: while Allow(addr) is false, new
// dials to addr fail and every read or write on an existing connection to addr fails and closes
// it, so both ends see the link drop, as with a real partition.
//
// Production nodes have no Allow function and never touch this package's wrappers.
package netfault

import (
	"context"
	"errors"
	"net"
	"time"
)

// Allow reports whether this node may talk to addr now.
type Allow func(addr string) bool

// ErrCut is returned for traffic over a cut link.
var ErrCut = errors.New("netfault: link cut")

// Dial dials addr over TCP unless the link is cut, and wraps the connection.
func (a Allow) Dial(ctx context.Context, addr string) (net.Conn, error) {
	if !a(addr) {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: ErrCut}
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return &Conn{Conn: c, addr: addr, allow: a}, nil
}

// DialTimeout is Dial with a timeout instead of a context.
func (a Allow) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return a.Dial(ctx, addr)
}

// Conn is a dialled connection that fails once its link is cut.
type Conn struct {
	net.Conn
	addr  string
	allow Allow
}

func (c *Conn) check() error {
	if c.allow(c.addr) {
		return nil
	}
	c.Conn.Close()
	return &net.OpError{Op: "io", Net: "tcp", Err: ErrCut}
}

func (c *Conn) Read(b []byte) (int, error) {
	if err := c.check(); err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(b)
	if err == nil {
		// A read may have blocked across the cut: data that crossed it is dropped too.
		if err := c.check(); err != nil {
			return 0, err
		}
	}
	return n, err
}

func (c *Conn) Write(b []byte) (int, error) {
	if err := c.check(); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}
