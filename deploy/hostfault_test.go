package deploy

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Real-host faults for the compose grid: iptables and tc run on the host, as root, inside one
// container's network namespace (nsenter -t PID -n), so the host's own namespace is never
// touched. Every rule matches only the grid's own subnet, on the container's interface in that
// subnet, and spares the Docker gateway (.1): the host reaches a container's published port
// through the gateway (docker-proxy), so the test can still talk to a cut-off node, as a
// clerk at the village's counter still can.

// Tool paths: absolute, so that PATH cannot swap them.
const (
	nsenterPath  = "/usr/bin/nsenter"
	iptablesPath = "/usr/sbin/iptables"
	tcPath       = "/usr/sbin/tc"
	ipPath       = "/usr/sbin/ip"
	ssPath       = "/usr/bin/ss"
)

// faultChainIn and faultChainOut hold a fault's rules in a container's namespace; INPUT and
// OUTPUT jump to them for the grid's subnet while the fault is on.
const (
	faultChainIn  = "GOVGRID-FAULT-IN"
	faultChainOut = "GOVGRID-FAULT-OUT"
)

// errNoNetem says the kernel has no netem qdisc (CONFIG_NET_SCH_NETEM unset).
var errNoNetem = errors.New("the kernel has no netem qdisc (CONFIG_NET_SCH_NETEM)")

// netns is one container of the compose project, entered from the host by its PID.
type netns struct {
	service   string
	container string       // container ID; "" for a namespace the test made itself
	pid       int          // its init process, whose network namespace the rules go into
	iface     string       // its interface in the grid's subnet
	addr      netip.Addr   // its address there
	subnet    netip.Prefix // the project's grid network
	gateway   netip.Addr   // the Docker gateway: the host's way in, never matched
}

// skipWithoutHostTools skips t unless it runs as root with nsenter, iptables, tc and ip.
func skipWithoutHostTools(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("real-host faults need root (nsenter into the containers' network namespaces)")
	}
	for _, p := range []string{nsenterPath, iptablesPath, tcPath, ipPath} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("real-host faults need %s: %v", p, err)
		}
	}
}

// enterNetns finds service's container in the compose project and checks that its network
// namespace is its own, not the host's, and that it sits in the project's grid subnet.
func (g *composeGrid) enterNetns(t *testing.T, service string) *netns {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := g.run(ctx, "ps", "-q", service)
	id := lastLine(out)
	if err != nil || id == "" {
		t.Fatalf("ps -q %s: %v %s", service, err, out)
	}
	// Compose labels its containers with their project: never touch another project's.
	label, err := docker(ctx, "inspect", "-f", `{{index .Config.Labels "com.docker.compose.project"}}`, id)
	if err != nil || label != g.project {
		t.Fatalf("container %s belongs to project %q, not %s: %v", id, label, g.project, err)
	}
	ns := &netns{service: service, container: id}
	if ns.pid, err = containerPID(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := ns.notHost(); err != nil {
		t.Fatal(err)
	}
	// The project's own network, found by Compose's labels, not by a guessed name.
	network, err := docker(ctx, "network", "ls", "-q", "--filter", "label=com.docker.compose.project="+g.project,
		"--filter", "label=com.docker.compose.network=grid")
	if err != nil || network == "" || strings.Contains(network, "\n") {
		t.Fatalf("the grid network of project %s: %v %q", g.project, err, network)
	}
	cfg, err := docker(ctx, "network", "inspect", "-f", `{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}};{{end}}`, network)
	if err != nil {
		t.Fatalf("network inspect %s: %v %s", network, err, cfg)
	}
	for _, entry := range strings.Split(cfg, ";") {
		f := strings.Fields(entry)
		if len(f) == 0 {
			continue
		}
		if p, err := netip.ParsePrefix(f[0]); err == nil && p.Addr().Is4() {
			ns.subnet = p.Masked()
			if len(f) > 1 {
				ns.gateway, _ = netip.ParseAddr(f[1])
			}
		}
	}
	if !ns.subnet.IsValid() {
		t.Fatalf("network %s has no IPv4 subnet: %q", network, cfg)
	}
	// The container's interface in that subnet, and the gateway its default route uses.
	addrs, err := ns.exec(ctx, ipPath, "-o", "-4", "addr", "show")
	if err != nil {
		t.Fatalf("%s: ip addr: %v", service, err)
	}
	for _, line := range strings.Split(addrs, "\n") {
		f := strings.Fields(line) // "32: eth0    inet 172.28.7.31/24 brd ... "
		if len(f) >= 4 && f[2] == "inet" {
			if p, err := netip.ParsePrefix(f[3]); err == nil && ns.subnet.Contains(p.Addr()) {
				ns.iface, _, _ = strings.Cut(f[1], "@")
				ns.addr = p.Addr()
			}
		}
	}
	if ns.iface == "" {
		t.Fatalf("%s has no interface in %s:\n%s", service, ns.subnet, addrs)
	}
	if route, err := ns.exec(ctx, ipPath, "-4", "route", "show", "default"); err == nil {
		if f := strings.Fields(route); len(f) >= 3 && f[1] == "via" {
			if gw, err := netip.ParseAddr(f[2]); err == nil && ns.subnet.Contains(gw) {
				ns.gateway = gw
			}
		}
	}
	if !ns.gateway.IsValid() || !ns.subnet.Contains(ns.gateway) {
		t.Fatalf("%s: no gateway in %s", service, ns.subnet)
	}
	return ns
}

// docker runs a docker command and returns its trimmed output.
func docker(ctx context.Context, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// containerPID is the host PID of a running container's init process.
func containerPID(ctx context.Context, id string) (int, error) {
	out, err := docker(ctx, "inspect", "-f", "{{.State.Pid}}", id)
	if err != nil {
		return 0, fmt.Errorf("inspect %s: %v %s", id, err, out)
	}
	pid, err := strconv.Atoi(out)
	if err != nil || pid <= 1 {
		return 0, fmt.Errorf("container %s has no running process (pid %q)", id, out)
	}
	return pid, nil
}

// notHost refuses a process that shares the host's network namespace (say, a container run
// with --network host): rules there would cut the host itself.
func (ns *netns) notHost() error {
	theirs, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", ns.pid))
	if err != nil {
		return fmt.Errorf("%s: network namespace of pid %d: %w", ns.service, ns.pid, err)
	}
	ours, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		return err
	}
	if theirs == ours {
		return fmt.Errorf("%s (pid %d) shares the host's network namespace %s: refusing to change it", ns.service, ns.pid, ours)
	}
	return nil
}

// exec runs a host tool inside the container's network namespace.
func (ns *netns) exec(ctx context.Context, tool string, args ...string) (string, error) {
	full := append([]string{"-t", strconv.Itoa(ns.pid), "-n", tool}, args...)
	out, err := exec.CommandContext(ctx, nsenterPath, full...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("nsenter %s: %s %s: %v: %s", ns.service, tool, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// iptables returns a runner of iptables in the container's namespace, bounded by ctx, that waits
// up to 5 s for the xtables lock.
func (ns *netns) iptables(ctx context.Context) func(args ...string) error {
	return func(args ...string) error {
		_, err := ns.exec(ctx, iptablesPath, append([]string{"-w", "5"}, args...)...)
		return err
	}
}

// sockets lists, read-only, the container's TCP connections to or from peer, with their
// timers and retransmission counts (ss -tnoi): the evidence of a connection that waits on
// packets that vanished.
func (ns *netns) sockets(peer netip.Addr) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := ns.exec(ctx, ssPath, "-tnoi", "dst", peer.String())
	if err != nil {
		return err.Error()
	}
	return strings.TrimSpace(out)
}

// gone reports whether the container's namespace (the one the rules went into) has gone: the
// container stopped or was restarted under a new process, and its rules went with it.
func (ns *netns) gone() bool {
	if ns.container == "" { // a namespace of the test's own (unshare): gone with its process
		_, err := os.Stat(fmt.Sprintf("/proc/%d/ns/net", ns.pid))
		return err != nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pid, err := containerPID(ctx, ns.container)
	return err != nil || pid != ns.pid
}

// uplinkFault is a set of iptables rules that break, inside one container, its links to the
// other nodes of the grid. On installs them (the jumps last, so the fault starts at once);
// Off removes them; both may be called again and again (a flapping link).
type uplinkFault struct {
	ns      *netns
	name    string
	in, out [][]string // rules of the input and output chains; nil: that direction is not touched
	mu      sync.Mutex
	on      bool // guarded by mu
}

// The faults. Each rule list is appended to a chain that first RETURNs the gateway's traffic.
var (
	// silentDrop: every packet to or from another grid node vanishes (a lost 4G uplink).
	silentDrop = func(ns *netns) *uplinkFault {
		return &uplinkFault{ns: ns, name: "silent drop", in: [][]string{{"-j", "DROP"}}, out: [][]string{{"-j", "DROP"}}}
	}
	// loudReject: every packet to or from another grid node is answered with an error, TCP
	// with a reset, the rest with ICMP port unreachable. The errors themselves go out (the
	// output chain would otherwise reject them too, and REJECT never answers a reset), so a
	// peer that sends anything is told at once.
	loudReject = func(ns *netns) *uplinkFault {
		reject := [][]string{{"-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset"}, {"-j", "REJECT"}}
		letErrorsOut := [][]string{{"-p", "tcp", "--tcp-flags", "RST", "RST", "-j", "RETURN"}, {"-p", "icmp", "-j", "RETURN"}}
		return &uplinkFault{ns: ns, name: "loud refusal", in: reject, out: append(letErrorsOut, reject...)}
	}
	// oneWayOut: what the container sends to the grid vanishes; what it is sent arrives.
	oneWayOut = func(ns *netns) *uplinkFault {
		return &uplinkFault{ns: ns, name: "one-way cut (outbound dropped)", out: [][]string{{"-j", "DROP"}}}
	}
)

// install applies f and removes it when t ends (tolerating a namespace that has gone).
func (f *uplinkFault) install(t *testing.T) {
	t.Helper()
	t.Cleanup(func() {
		if err := f.Off(); err != nil {
			t.Errorf("undo %s in %s: %v", f.name, f.ns.service, err)
		}
	})
	if err := f.On(); err != nil {
		t.Fatalf("%s in %s: %v", f.name, f.ns.service, err)
	}
}

// jumps are the rules that send the grid's traffic on the container's interface to the
// fault's chains, the gateway's included (the chains return it).
func (f *uplinkFault) jumps() [][]string {
	var j [][]string
	if f.in != nil {
		j = append(j, []string{"INPUT", "-i", f.ns.iface, "-s", f.ns.subnet.String(), "-j", faultChainIn})
	}
	if f.out != nil {
		j = append(j, []string{"OUTPUT", "-o", f.ns.iface, "-d", f.ns.subnet.String(), "-j", faultChainOut})
	}
	return j
}

// On installs the fault's rules in the container's namespace.
func (f *uplinkFault) On() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.on {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ipt := f.ns.iptables(ctx)
	gw := f.ns.gateway.String() + "/32"
	for _, c := range []struct {
		chain, dir string
		rules      [][]string
	}{{faultChainIn, "-s", f.in}, {faultChainOut, "-d", f.out}} {
		if c.rules == nil {
			continue
		}
		// A fresh chain: whatever a crashed run left is flushed.
		if err := ipt("-N", c.chain); err != nil && !strings.Contains(err.Error(), "exists") {
			return err
		}
		if err := ipt("-F", c.chain); err != nil {
			return err
		}
		if err := ipt("-A", c.chain, c.dir, gw, "-j", "RETURN"); err != nil {
			return err
		}
		for _, r := range c.rules {
			if err := ipt(append([]string{"-A", c.chain}, r...)...); err != nil {
				return err
			}
		}
	}
	for _, j := range f.jumps() {
		if err := ipt(append([]string{"-I", j[0], "1"}, j[1:]...)...); err != nil {
			return err
		}
	}
	f.on = true
	return nil
}

// Off removes the fault's rules. A container whose namespace has gone took them with it.
func (f *uplinkFault) Off() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ns.gone() {
		f.on = false
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ipt := f.ns.iptables(ctx)
	// Each step may find nothing to remove (an earlier Off, a failed On): only what is left
	// at the end counts.
	for _, j := range f.jumps() {
		for i := 0; i < 10 && ipt(append([]string{"-D", j[0]}, j[1:]...)...) == nil; i++ {
		}
	}
	for _, chain := range []string{faultChainIn, faultChainOut} {
		_ = ipt("-F", chain)
		_ = ipt("-X", chain)
	}
	f.on = false
	left, err := f.ns.exec(ctx, iptablesPath, "-w", "5", "-S")
	if err != nil {
		if f.ns.gone() {
			return nil
		}
		return err
	}
	if strings.Contains(left, "GOVGRID-FAULT") {
		return fmt.Errorf("rules left behind:\n%s", left)
	}
	return nil
}

// netem is a tc netem qdisc at the root of the container's grid interface.
type netem struct {
	ns   *netns
	args []string // after "netem": "delay", "300ms", "30ms", "loss", "10%"
	mu   sync.Mutex
	on   bool // guarded by mu
}

// install adds the qdisc, to be removed by Off or when t ends; errNoNetem if the kernel lacks
// netem. Unlike the iptables faults it also delays the host's requests to the container (they
// cross the same interface), which the test's HTTP client tolerates.
func (q *netem) install(t *testing.T) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := append([]string{"qdisc", "add", "dev", q.ns.iface, "root", "netem"}, q.args...)
	if _, err := q.ns.exec(ctx, tcPath, args...); err != nil {
		if strings.Contains(err.Error(), "qdisc kind is unknown") {
			return errNoNetem
		}
		return err
	}
	q.mu.Lock()
	q.on = true
	q.mu.Unlock()
	t.Cleanup(func() {
		if err := q.Off(); err != nil {
			t.Errorf("undo netem in %s: %v", q.ns.service, err)
		}
	})
	return nil
}

// Off removes the qdisc. A container whose namespace has gone took it with it.
func (q *netem) Off() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.on || q.ns.gone() {
		q.on = false
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := q.ns.exec(ctx, tcPath, "qdisc", "del", "dev", q.ns.iface, "root"); err != nil && !q.ns.gone() {
		return err
	}
	q.on = false
	return nil
}

// flap turns f on and off every period until stop is closed, then leaves it off; it returns
// when it has. Errors are reported to t.
func flap(t *testing.T, f *uplinkFault, period time.Duration, stop <-chan struct{}) (cycles int) {
	tick := time.NewTicker(period)
	defer tick.Stop()
	defer func() {
		if err := f.Off(); err != nil {
			t.Errorf("flapping %s: off: %v", f.ns.service, err)
		}
	}()
	for on := true; ; on = !on {
		var err error
		if on {
			err = f.On()
			cycles++
		} else {
			err = f.Off()
		}
		if err != nil {
			t.Errorf("flapping %s: %v", f.ns.service, err)
			return cycles
		}
		select {
		case <-stop:
			return cycles
		case <-tick.C:
		}
	}
}
