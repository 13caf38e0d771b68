package systems

import (
	"fmt"
	"net"
)

// FreePorts returns n distinct ports on 127.0.0.1 that were free for both TCP and UDP a moment
// ago. Each is found by listening on port 0 and closing the listener, so another process may in
// principle take it before the caller binds it.
func FreePorts(n int) ([]int, error) {
	var (
		ports   []int
		closers []func()
	)
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	for attempts := 0; len(ports) < n; attempts++ {
		if attempts > 10*n+10 {
			return nil, fmt.Errorf("could not find %d free ports", n)
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		// Keep every listener open until the end so that no port is handed out twice.
		closers = append(closers, func() { _ = l.Close() })
		port := l.Addr().(*net.TCPAddr).Port
		// Gossip (memberlist) also needs the UDP side of the port.
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		closers = append(closers, func() { _ = u.Close() })
		ports = append(ports, port)
	}
	return ports, nil
}
