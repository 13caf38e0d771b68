package deploy

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/govgrid/govgrid/testgrid"
	"golang.org/x/sys/unix"
)

// A slow, lossy link without netem. Where the kernel has no netem qdisc, a village's 4G link
// (300 ms ± 30 ms, 10% loss) is made with NFQUEUE, which the kernel has whenever iptables does:
// an iptables rule in the community's namespace queues each packet it sends to the grid, and
// a small process in that namespace (this test binary, run again under nsenter) holds each one
// for its delay and then lets it go, or drops it. That is what `netem delay 300ms 30ms loss 10%`
// does on the interface's egress, packet by packet.

// Environment of the delayer process: the queue, the delay, its jitter and the loss.
const (
	delayerQueueEnv  = "GOVGRID_DELAYER_QUEUE"
	delayerDelayEnv  = "GOVGRID_DELAYER_DELAY"
	delayerJitterEnv = "GOVGRID_DELAYER_JITTER"
	delayerLossEnv   = "GOVGRID_DELAYER_LOSS"
)

// delayerQueue is the NFQUEUE number the village's link uses.
const delayerQueue = 7

// slowLink is a running delayer and the iptables rule that feeds it.
type slowLink struct {
	ns    *netns
	cmd   *exec.Cmd
	rule  *uplinkFault
	wait  chan error
	delay time.Duration
}

// startSlowLink starts the delayer in ns's namespace, then queues the container's packets to
// the grid through it. Stop undoes both.
func startSlowLink(t *testing.T, ns *netns, delay, jitter time.Duration, loss float64) *slowLink {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(nsenterPath, "-t", strconv.Itoa(ns.pid), "-n", self, "-test.run=^$")
	cmd.Env = append(os.Environ(),
		delayerQueueEnv+"="+strconv.Itoa(delayerQueue), delayerDelayEnv+"="+delay.String(),
		delayerJitterEnv+"="+jitter.String(), delayerLossEnv+"="+strconv.FormatFloat(loss, 'f', 3, 64))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the delayer in %s: %v", ns.service, err)
	}
	l := &slowLink{ns: ns, cmd: cmd, wait: make(chan error, 1), delay: delay}
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		ready <- strings.TrimSpace(line)
		l.wait <- cmd.Wait()
	}()
	select {
	case line := <-ready:
		if line != "ready" {
			t.Fatalf("the delayer in %s did not start: %q", ns.service, line)
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("the delayer in %s did not start in 30 s", ns.service)
	}
	// Without --queue-bypass: if the delayer dies, the link goes dead, and the test sees it.
	l.rule = &uplinkFault{ns: ns, name: fmt.Sprintf("4G link (%s ± %s, %.0f%% loss)", delay, jitter, loss*100),
		out: [][]string{{"-j", "NFQUEUE", "--queue-num", strconv.Itoa(delayerQueue)}}}
	t.Cleanup(func() {
		if err := l.Stop(); err != nil {
			t.Errorf("undo the slow link in %s: %v", ns.service, err)
		}
	})
	if err := l.rule.On(); err != nil {
		t.Fatalf("%s in %s: %v", l.rule.name, ns.service, err)
	}
	return l
}

// Stop removes the rule, lets the delayer release what it holds, and stops it.
func (l *slowLink) Stop() error {
	if l.cmd == nil {
		return nil
	}
	err := l.rule.Off()
	_ = l.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-l.wait:
	case <-time.After(10 * time.Second):
		_ = l.cmd.Process.Kill()
		<-l.wait
	}
	l.cmd = nil
	return err
}

// maybeRunDelayer runs the delayer and exits when the test binary was started as one.
func maybeRunDelayer() {
	q := os.Getenv(delayerQueueEnv)
	if q == "" {
		return
	}
	queue, err1 := strconv.Atoi(q)
	delay, err2 := time.ParseDuration(os.Getenv(delayerDelayEnv))
	jitter, err3 := time.ParseDuration(os.Getenv(delayerJitterEnv))
	loss, err4 := strconv.ParseFloat(os.Getenv(delayerLossEnv), 64)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		fmt.Fprintln(os.Stderr, "delayer:", err)
		os.Exit(2)
	}
	if err := runDelayer(uint16(queue), delay, jitter, loss); err != nil {
		fmt.Fprintln(os.Stderr, "delayer:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// The netlink messages of nfnetlink_queue (linux/netfilter/nfnetlink_queue.h).
const (
	nfnlSubsysQueue = 3
	nfqnlMsgPacket  = 0
	nfqnlMsgVerdict = 1
	nfqnlMsgConfig  = 2

	nfqaCfgCmd      = 1
	nfqaCfgParams   = 2
	nfqaCfgQueueMax = 3
	nfqnlCfgCmdBind = 1
	nfqnlCopyMeta   = 1

	nfqaPacketHdr  = 1
	nfqaVerdictHdr = 2
	nfDrop         = 0
	nfAccept       = 1
)

// runDelayer binds NFQUEUE queue in this process's network namespace, prints "ready", and
// gives each queued packet its verdict after delay ± jitter (accept, or drop with probability
// loss) until SIGTERM, when it releases what it holds and exits.
func runDelayer(queue uint16, delay, jitter time.Duration, loss float64) error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	if err != nil {
		return fmt.Errorf("netlink socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("bind netlink: %w", err)
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 16<<20)
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_NO_ENOBUFS, 1)

	var seq atomic.Uint32
	var sendMu sync.Mutex
	send := func(msgType uint16, flags uint16, attrs []byte) error {
		sendMu.Lock()
		defer sendMu.Unlock()
		return unix.Sendto(fd, nfnlMessage(msgType, flags, seq.Add(1), queue, attrs), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
	}
	config := func(attrs []byte) error {
		if err := send(nfnlSubsysQueue<<8|nfqnlMsgConfig, unix.NLM_F_REQUEST|unix.NLM_F_ACK, attrs); err != nil {
			return err
		}
		return readAck(fd)
	}
	cmd := []byte{nfqnlCfgCmdBind, 0, 0, unix.AF_INET} // command, pad, protocol family (big-endian)
	if err := config(nlattr(nfqaCfgCmd, cmd)); err != nil {
		return fmt.Errorf("bind queue %d: %w", queue, err)
	}
	params := binary.BigEndian.AppendUint32(nil, 0xffff) // copy range (unused with meta)
	params = append(params, nfqnlCopyMeta)
	attrs := nlattr(nfqaCfgParams, params)
	attrs = append(attrs, nlattr(nfqaCfgQueueMax, binary.BigEndian.AppendUint32(nil, 1<<14))...)
	if err := config(attrs); err != nil {
		return fmt.Errorf("configure queue %d: %w", queue, err)
	}
	fmt.Println("ready")

	var pending atomic.Int64 // packets held
	verdict := func(id uint32, v uint32) {
		defer pending.Add(-1)
		hdr := binary.BigEndian.AppendUint32(nil, v)
		hdr = binary.BigEndian.AppendUint32(hdr, id)
		if err := send(nfnlSubsysQueue<<8|nfqnlMsgVerdict, unix.NLM_F_REQUEST, nlattr(nfqaVerdictHdr, hdr)); err != nil {
			fmt.Fprintln(os.Stderr, "delayer: verdict:", err)
		}
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-stop
		// The rule is gone before the signal: release what is held (at most delay+jitter),
		// then exit; the kernel drops whatever the closed queue still had.
		deadline := time.Now().Add(delay + jitter + time.Second)
		for pending.Load() > 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		os.Exit(0)
	}()
	buf := make([]byte, 1<<16)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil || n == 0 {
			if errors.Is(err, unix.EINTR) || errors.Is(err, unix.ENOBUFS) {
				continue
			}
			return fmt.Errorf("read the queue: %w", err)
		}
		for _, id := range packetIDs(buf[:n]) {
			v := uint32(nfAccept)
			if rand.Float64() < loss {
				v = nfDrop
			}
			d := delay
			if jitter > 0 {
				d += time.Duration(rand.Int64N(int64(2*jitter))) - jitter
			}
			pending.Add(1)
			time.AfterFunc(d, func() { verdict(id, v) })
		}
	}
}

// nfnlMessage is one netlink message of nfnetlink: the header, the nfgenmsg naming the queue,
// and the attributes.
func nfnlMessage(msgType, flags uint16, seq uint32, queue uint16, attrs []byte) []byte {
	b := make([]byte, 16, 20+len(attrs))
	binary.NativeEndian.PutUint32(b[0:], uint32(20+len(attrs)))
	binary.NativeEndian.PutUint16(b[4:], msgType)
	binary.NativeEndian.PutUint16(b[6:], flags)
	binary.NativeEndian.PutUint32(b[8:], seq)
	b = append(b, unix.AF_UNSPEC, 0 /* NFNETLINK_V0 */)
	b = binary.BigEndian.AppendUint16(b, queue)
	return append(b, attrs...)
}

// nlattr is one netlink attribute, padded to 4 bytes.
func nlattr(typ uint16, value []byte) []byte {
	b := binary.NativeEndian.AppendUint16(nil, uint16(4+len(value)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, value...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// readAck reads the kernel's answer to a request sent with NLM_F_ACK.
func readAck(fd int) error {
	buf := make([]byte, 4096)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		return err
	}
	if n < 20 || binary.NativeEndian.Uint16(buf[4:]) != unix.NLMSG_ERROR {
		return fmt.Errorf("unexpected netlink answer (%d bytes)", n)
	}
	if errno := int32(binary.NativeEndian.Uint32(buf[16:])); errno != 0 {
		return syscall.Errno(-errno)
	}
	return nil
}

// packetIDs returns the ids of the queued packets in a batch of netlink messages.
func packetIDs(b []byte) []uint32 {
	var ids []uint32
	for len(b) >= 16 {
		size := int(binary.NativeEndian.Uint32(b[0:]))
		if size < 16 || size > len(b) {
			break
		}
		if binary.NativeEndian.Uint16(b[4:]) == nfnlSubsysQueue<<8|nfqnlMsgPacket && size >= 20 {
			for a := b[20:size]; len(a) >= 4; {
				alen := int(binary.NativeEndian.Uint16(a[0:]))
				if alen < 4 || alen > len(a) {
					break
				}
				if binary.NativeEndian.Uint16(a[2:])&0x3fff == nfqaPacketHdr && alen >= 8 {
					ids = append(ids, binary.BigEndian.Uint32(a[4:]))
				}
				a = a[min((alen+3)&^3, len(a)):]
			}
		}
		b = b[min((size+3)&^3, len(b)):]
	}
	return ids
}

// Environment of the probe process: how many round trips to time.
const probeEnv = "GOVGRID_DELAYER_PROBE"

// maybeRunProbe times TCP round trips over loopback in this process's namespace, prints the
// median in milliseconds, and exits, when the test binary was started as a probe.
func maybeRunProbe() {
	rounds, err := strconv.Atoi(os.Getenv(probeEnv))
	if err != nil || rounds <= 0 {
		return
	}
	rtt, err := loopbackRoundTrip(rounds)
	if err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		os.Exit(1)
	}
	fmt.Println(rtt.Milliseconds())
	os.Exit(0)
}

// loopbackRoundTrip is the median time of rounds one-byte echoes over one TCP connection on
// 127.0.0.1.
func loopbackRoundTrip(rounds int) (time.Duration, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(c, c)
	}()
	c, err := net.DialTimeout("tcp", l.Addr().String(), 10*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	var times []time.Duration
	b := []byte{1}
	for range rounds {
		start := time.Now()
		if _, err := c.Write(b); err != nil {
			return 0, err
		}
		if _, err := io.ReadFull(c, b); err != nil {
			return 0, err
		}
		times = append(times, time.Since(start))
	}
	slices.Sort(times)
	return times[len(times)/2], nil
}

// TestSlowLinkDelaysPackets checks the delayer without Docker: in a network namespace of its
// own (unshare -n), loopback's round trip is under 50 ms, then about twice the delay (each way
// is queued once) while the slow link is on, and quick again once it is off.
func TestSlowLinkDelaysPackets(t *testing.T) {
	skipWithoutHostTools(t)
	const unsharePath = "/usr/bin/unshare"
	if _, err := os.Stat(unsharePath); err != nil {
		t.Skipf("needs %s: %v", unsharePath, err)
	}
	holder := exec.Command(unsharePath, "-n", "sleep", "600")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = holder.Process.Kill()
		_ = holder.Wait()
	})
	ns := &netns{service: "probe namespace", pid: holder.Process.Pid, iface: "lo",
		subnet: netip.MustParsePrefix("127.0.0.0/8"), gateway: netip.MustParseAddr("127.255.255.254")}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// unshare has made the namespace once the holder's differs from ours.
	if _, err := testgrid.Poll(30*time.Second, ns.notHost); err != nil {
		t.Fatalf("unshare -n made no namespace: %v", err)
	}
	if _, err := ns.exec(ctx, ipPath, "link", "set", "lo", "up"); err != nil {
		t.Fatal(err)
	}
	probe := func() time.Duration {
		t.Helper()
		self, _ := os.Executable()
		cmd := exec.CommandContext(ctx, nsenterPath, "-t", strconv.Itoa(ns.pid), "-n", self, "-test.run=^$")
		cmd.Env = append(os.Environ(), probeEnv+"=5")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("probe: %v", err)
		}
		ms, err := strconv.Atoi(strings.TrimSpace(string(out)))
		if err != nil {
			t.Fatalf("probe said %q", out)
		}
		return time.Duration(ms) * time.Millisecond
	}
	if rtt := probe(); rtt >= 50*time.Millisecond {
		t.Fatalf("loopback round trip before the slow link: %s", rtt)
	}
	const delay = 100 * time.Millisecond
	link := startSlowLink(t, ns, delay, 10*time.Millisecond, 0)
	rtt := probe()
	if rtt < 2*delay-30*time.Millisecond || rtt > 2*delay+200*time.Millisecond {
		t.Fatalf("loopback round trip over the slow link: %s, want about %s", rtt, 2*delay)
	}
	t.Logf("loopback round trip over a link of %s each way: %s", delay, rtt)
	if err := link.Stop(); err != nil {
		t.Fatal(err)
	}
	if rtt := probe(); rtt >= 50*time.Millisecond {
		t.Fatalf("loopback round trip after the slow link: %s", rtt)
	}
}
