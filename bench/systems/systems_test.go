package systems

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
)

func TestPadText(t *testing.T) {
	for _, n := range []int{0, 1, 77, 78, 79, 500, 1000} {
		s := padText(n)
		if len(s) != n || !utf8.ValidString(s) {
			t.Errorf("padText(%d): %d bytes, valid UTF-8 %v", n, len(s), utf8.ValidString(s))
		}
	}
}

func TestCaseGenSize(t *testing.T) {
	g := newCaseGen(ValueSize)
	for _, ws := range [][2]int{{0, 0}, {63, 123456}, {-1, 2}, {99999, 9999999999}} {
		if got := proto.Size(g.request(ws[0], ws[1])); got != ValueSize {
			t.Errorf("request(%d, %d) encodes to %d bytes, want %d", ws[0], ws[1], got, ValueSize)
		}
	}
}

func TestFreePorts(t *testing.T) {
	ports, err := FreePorts(20)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if p <= 0 || seen[p] {
			t.Fatalf("bad or repeated port %d in %v", p, ports)
		}
		seen[p] = true
	}
}

func TestParseStatus(t *testing.T) {
	tests := []struct {
		name, in string
		want     Mem
		wantErr  bool
	}{
		{"normal", "Name:\tx\nVmPeak:\t  9999 kB\nVmRSS:\t   12345 kB\nRssAnon:\t    2345 kB\nRssFile:\t   10000 kB\nRssShmem:\t0 kB\nThreads:\t4\n",
			Mem{RSS: 12345 * 1024, Anon: 2345 * 1024, File: 10000 * 1024}, false},
		{"old kernel", "VmRSS:\t12 kB\n", Mem{RSS: 12 * 1024}, false},
		{"missing", "Name:\tkthreadd\nThreads:\t1\n", Mem{}, true},
		{"bad unit", "VmRSS:\t12 MB\n", Mem{}, true},
		{"bad anon", "VmRSS:\t12 kB\nRssAnon:\tx kB\n", Mem{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatus(strings.NewReader(tt.in), "status")
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseStatus = %+v, %v; want %+v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestDirSize(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sub", "a"), make([]byte, 10000), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 30); err != nil {
		t.Fatal(err)
	}
	f.Close()
	disk, apparent, err := DirSize(dir)
	if err != nil || apparent != 10000+1<<30 || disk < 10000 || disk >= 1<<30 {
		t.Errorf("DirSize = %d, %d, %v", disk, apparent, err)
	}
}

func TestStable(t *testing.T) {
	tests := []struct {
		vals []int64
		want bool
	}{
		{[]int64{100, 100, 100}, true},
		{[]int64{1000, 995, 1010}, false},
		{[]int64{1000, 995, 1005}, true},
		{[]int64{100, 200, 100}, false},
	}
	for _, tt := range tests {
		if got := stable(tt.vals, 0.01); got != tt.want {
			t.Errorf("stable(%v) = %v, want %v", tt.vals, got, tt.want)
		}
	}
}

func TestRSSSelf(t *testing.T) {
	rss, err := RSS(os.Getpid())
	if err != nil || rss < 1<<20 {
		t.Fatalf("RSS(self) = %d, %v", rss, err)
	}
	m, _, err := SettledMem(context.Background(), os.Getpid(), 10*time.Millisecond, time.Second)
	// VmRSS = RssAnon + RssFile + RssShmem, all from one snapshot.
	if err != nil || m.Anon <= 0 || m.Anon+m.File > m.RSS {
		t.Fatalf("SettledMem(self) = %+v, %v", m, err)
	}
}

// exercise runs a few ops against tg, closes it and checks that its processes and data are gone.
func exercise(t *testing.T, tg *Target, workers int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if len(tg.PIDs) != tg.Nodes {
		t.Errorf("%d PIDs for %d nodes", len(tg.PIDs), tg.Nodes)
	}
	for _, pid := range tg.PIDs {
		if rss, err := RSS(pid); err != nil || rss == 0 {
			t.Errorf("RSS(%d) = %d, %v", pid, rss, err)
		}
	}
	for w := range workers {
		for seq := range 5 {
			if err := tg.Op(ctx, w, seq); err != nil {
				t.Fatalf("op(%d, %d): %v", w, seq, err)
			}
		}
	}
	if err := tg.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := tg.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	for _, pid := range tg.PIDs {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process %d still exists after Close (kill 0: %v)", pid, err)
		}
	}
	if _, err := os.Stat(tg.Dir); !os.IsNotExist(err) {
		t.Errorf("data dir %s not removed: %v", tg.Dir, err)
	}
}

func TestStartEtcd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real etcd processes")
	}
	if _, err := exec.LookPath("etcd"); err != nil {
		t.Skip("etcd not installed")
	}
	for _, nodes := range []int{1, 3} {
		t.Run(map[int]string{1: "1 node", 3: "3 nodes"}[nodes], func(t *testing.T) {
			tg, err := StartEtcd(context.Background(), EtcdConfig{Nodes: nodes})
			if err != nil {
				t.Fatal(err)
			}
			exercise(t, tg, 4)
		})
	}
}

func TestStartPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real PostgreSQL server")
	}
	if _, err := postgresBinDir(""); err != nil {
		t.Skip(err)
	}
	tg, err := StartPostgres(context.Background(), PostgresConfig{PoolSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	exercise(t, tg, 8) // more workers than connections: they wait for an idle one
}

func TestStartGovgridFake(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(fakeAgentEnv, "1")
	for _, nodes := range []int{1, 3} {
		// Started sees every node serving, before the benchmark's account exists.
		started := 0
		check := func(tg *Target) error {
			started++
			if len(tg.PIDs) != nodes || len(tg.HTTPAddrs) != nodes {
				t.Errorf("Started: %d PIDs and %d HTTP addresses for %d nodes", len(tg.PIDs), len(tg.HTTPAddrs), nodes)
			}
			return nil
		}
		tg, err := StartGovgrid(context.Background(), GovgridConfig{Binary: self, Nodes: nodes, Started: check})
		if err != nil {
			t.Fatal(err)
		}
		if started != 1 {
			t.Errorf("Started called %d times", started)
		}
		exercise(t, tg, 6) // every op carries the token: the fake agent refuses a case without it
	}
}

func TestStartGovgridMissingBinary(t *testing.T) {
	_, err := StartGovgrid(context.Background(), GovgridConfig{Binary: "/nonexistent/govgrid"})
	if err == nil {
		t.Fatal("expected an error for a missing binary")
	}
}

func TestStartupFailureReportsLog(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	// /bin/false is a "govgrid" that exits at once: the starter must fail fast, not time out.
	start := time.Now()
	_, err := StartGovgrid(context.Background(), GovgridConfig{Binary: "/bin/false", Common: Common{StartTimeout: time.Minute}})
	if err == nil || !strings.Contains(err.Error(), "exited during startup") {
		t.Fatalf("err = %v", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("took %v to notice the exit", time.Since(start))
	}
}
