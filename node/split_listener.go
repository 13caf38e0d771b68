package node

import (
	"errors"
	"net"
	"sync"
	"time"
)

// splitListener sorts the gRPC port's connections by their first byte: a TLS handshake (0x16)
// goes to the encrypted server (nodes over mutual TLS, and clients that want TLS), anything else
// to the plain-text one (the public Cases service, health and reflection, as the contract says).
// One port keeps every address the grid announces; the Cluster service answers only over TLS.
type splitListener struct {
	inner net.Listener
	tls   *subListener
	plain *subListener
	once  sync.Once

	mu      sync.Mutex
	closed  bool                  // guarded by mu
	pending map[net.Conn]struct{} // guarded by mu: connections not sorted yet
}

// firstByteTimeout bounds how long a connection may stay silent before it is sorted: a client
// that connects and sends nothing holds one goroutine that long.
const firstByteTimeout = 10 * time.Second

func newSplitListener(inner net.Listener) *splitListener {
	s := &splitListener{inner: inner, pending: map[net.Conn]struct{}{}}
	done := make(chan struct{})
	s.tls = &subListener{parent: s, conns: make(chan net.Conn), done: done}
	s.plain = &subListener{parent: s, conns: make(chan net.Conn), done: done}
	go s.run(done)
	return s
}

func (s *splitListener) run(done chan struct{}) {
	defer s.once.Do(func() { close(done) })
	for {
		conn, err := s.inner.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		go s.sort(conn, done)
	}
}

func (s *splitListener) sort(conn net.Conn, done chan struct{}) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		conn.Close()
		return
	}
	s.pending[conn] = struct{}{}
	s.mu.Unlock()
	conn.SetReadDeadline(time.Now().Add(firstByteTimeout))
	var first [1]byte
	_, err := conn.Read(first[:])
	s.mu.Lock()
	delete(s.pending, conn)
	s.mu.Unlock()
	if err != nil {
		conn.Close()
		return
	}
	conn.SetReadDeadline(time.Time{})
	to := s.plain
	if first[0] == 0x16 {
		to = s.tls
	}
	select {
	case to.conns <- &peekedConn{Conn: conn, first: first[:]}:
	case <-done:
		conn.Close()
	}
}

// Close stops the inner listener, and the connections still being sorted; both sides' Accept
// then return an error.
func (s *splitListener) Close() error {
	s.mu.Lock()
	s.closed = true
	for c := range s.pending {
		c.Close()
	}
	s.mu.Unlock()
	return s.inner.Close()
}

// subListener is one side of a splitListener.
type subListener struct {
	parent *splitListener
	conns  chan net.Conn
	done   chan struct{}
}

func (l *subListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close closes the whole port: the two servers on it stop together.
func (l *subListener) Close() error { return l.parent.Close() }

func (l *subListener) Addr() net.Addr { return l.parent.inner.Addr() }

// peekedConn gives back the byte read to sort the connection.
type peekedConn struct {
	net.Conn
	first []byte
}

func (c *peekedConn) Read(p []byte) (int, error) {
	if len(c.first) > 0 {
		n := copy(p, c.first)
		c.first = c.first[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}
