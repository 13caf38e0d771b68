package mirrorbench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/govgrid/govgrid/bench/internal/benchkit"
	"github.com/govgrid/govgrid/bench/systems"
	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/node"
	"github.com/govgrid/govgrid/testgrid"
	"github.com/govgrid/govgrid/tier"
)

// The mirror phase's grid.
const (
	mirrorDistrict = "cd"
	mirrorGrid     = "mirrorbench"
)

// Settling of the memory reading after the load: VmRSS every settleInterval until three
// readings agree within 1%, at most settleMax (as govgrid-bench's memory measurement).
const (
	settleInterval = time.Second
	settleMax      = 15 * time.Second
)

// synthSite names the i-th synthetic township (0-based) and the j-th community beneath it.
func synthSite(i int) string         { return fmt.Sprintf("%s-s%02d", mirrorDistrict, i+1) }
func synthCommunity(i, j int) string { return fmt.Sprintf("%s-c%02d", synthSite(i), j+1) }
func synthCount(cases, townships, i int) uint64 {
	n := cases / townships
	if i < cases%townships {
		n++
	}
	return uint64(n)
}

// runMirror starts a 1-node district, loads its mirror from synthetic townships' feeds, times
// subtree listings over HTTP and reads the process's memory.
func (cfg Config) runMirror(ctx context.Context) (*MirrorResult, error) {
	return benchkit.Measure(filepath.Join(cfg.Dir, "mirror"), func(t *benchkit.T) (*MirrorResult, error) {
		return measureMirror(ctx, t, cfg)
	})
}

// measureMirror is runMirror with a district that stops when t's cleanups run.
func measureMirror(ctx context.Context, t *benchkit.T, cfg Config) (*MirrorResult, error) {
	res := &MirrorResult{Cases: cfg.MirrorCases, Townships: cfg.MirrorTownships, Communities: cfg.MirrorCommunities, PageSize: cfg.PageSize, ListFor: cfg.ListFor, TargetRSS: TargetRSS, TargetAnon: TargetAnon}
	pid := os.Getpid()
	// The baseline is this process before the district exists: whatever earlier phases left,
	// after a collection that hands free memory back to the OS.
	runtime.GC()
	debug.FreeOSMemory()
	var err error
	if res.Baseline, err = systems.ReadMem(pid); err != nil {
		return res, fmt.Errorf("mirrorbench: read memory: %w", err)
	}
	benchkit.Progress(cfg.Progress, "feeds: mirror: baseline VmRSS %s; starting a 1-node district", benchkit.MiB(res.Baseline.RSS))

	// The synthetic townships stop after the district (cleanups run last registered first).
	var townships []*synthTownship
	t.Cleanup(func() {
		for _, s := range townships {
			s.close()
		}
	})
	started := time.Now()
	grid := testgrid.New(t, benchkit.GridSpec(mirrorGrid, cfg.Logger, nil, testgrid.Site{Code: mirrorDistrict, Tier: tier.District, Nodes: 1}))
	district := grid.SiteNodes(mirrorDistrict)[0]
	err = benchkit.Until(ctx, time.Minute, 20*time.Millisecond, func() error {
		if !district.Raft().IsLeader() {
			return fmt.Errorf("the district does not lead its site yet")
		}
		return benchkit.Listed(district, map[string]bool{mirrorDistrict: true})
	})
	if err != nil {
		return res, fmt.Errorf("mirrorbench: district not ready: %w", err)
	}
	// The listings are signed in (every case call is), as the harness's staff of the district:
	// its account is written and signed in now, before the load, so that the password's hash
	// (argon2id, once) is not among what the load's and the listings' memory readings see
	// happening.
	token := testgrid.StaffToken(t, district)

	span := cfg.MirrorSpan
	step := span / time.Duration(cfg.MirrorCases)
	base := time.Now().Add(-span)
	totals := map[string]uint64{}
	for i := range cfg.MirrorTownships {
		g := &generator{site: synthSite(i), index: i, townships: cfg.MirrorTownships, total: synthCount(cfg.MirrorCases, cfg.MirrorTownships, i),
			base: base, step: step, loc: casework.GridLocation()}
		for j := range cfg.MirrorCommunities {
			g.communities = append(g.communities, synthCommunity(i, j))
		}
		s, err := startSynthTownship(g, mirrorDistrict, mirrorGrid, district.Addrs().Gossip, grid.CA(), grid.GossipKey())
		if err != nil {
			return res, err
		}
		townships = append(townships, s)
		totals[g.site] = g.total
	}
	// The district's pullers find a child's node through gossip: register only once the
	// district sees every synthetic member, or its first attempts back off for nothing.
	err = benchkit.Until(ctx, time.Minute, 20*time.Millisecond, func() error {
		alive := map[string]bool{}
		for _, m := range district.GossipMembers() {
			if m.Status == "alive" {
				alive[m.Name] = true
			}
		}
		for _, s := range townships {
			if !alive[s.member] {
				return fmt.Errorf("the district's gossip does not show %s", s.member)
			}
		}
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("mirrorbench: %w", err)
	}

	benchkit.Progress(cfg.Progress, "feeds: mirror: loading %d cases from %d synthetic townships' feeds", cfg.MirrorCases, cfg.MirrorTownships)
	t0 := time.Now()
	for _, s := range townships {
		if err := s.register(ctx, district.Addrs().GRPC); err != nil {
			return res, fmt.Errorf("mirrorbench: register %s at the district: %w", s.gen.site, err)
		}
	}
	err = waitLoaded(ctx, cfg, district, totals, t0, res)
	res.Load = time.Since(t0)
	var bytes uint64
	for _, s := range townships {
		res.Served += s.served.Load()
		res.Reconnects += int(s.streams.Load()) - 1
		res.GenerateCPU += time.Duration(s.genNS.Load())
		bytes += s.bytes.Load()
	}
	if res.Served > 0 {
		res.EntryBytes = int(bytes / res.Served)
	}
	if err != nil {
		return res, err
	}
	res.PerSec = float64(res.Mirrored) / res.Load.Seconds()
	benchkit.Progress(cfg.Progress, "feeds: mirror: %d entries mirrored in %v (%.0f/s); peak VmRSS %s", res.Mirrored, res.Load.Round(time.Millisecond), res.PerSec, benchkit.MiB(res.Peak.RSS))

	if res.Loaded, res.LoadedSettled, err = systems.SettledMem(ctx, pid, settleInterval, settleMax); err != nil {
		return res, err
	}
	benchkit.Progress(cfg.Progress, "feeds: mirror: after the load VmRSS %s (RssAnon %s, RssFile %s)", benchkit.MiB(res.Loaded.RSS), benchkit.MiB(res.Loaded.Anon), benchkit.MiB(res.Loaded.File))
	if cfg.QuietMax > 0 {
		if res.QuietWait, res.Quieted, err = waitQuiet(ctx, cfg.QuietMax); err != nil {
			return res, err
		}
		benchkit.Progress(cfg.Progress, "feeds: mirror: quiet after %v (%v)", res.QuietWait.Round(time.Second), res.Quieted)
	}
	benchkit.Progress(cfg.Progress, "feeds: mirror: timing subtree listings, for at least %v", cfg.ListFor)
	l := &lister{base: "http://" + district.Addrs().HTTP, token: token, pageSize: cfg.PageSize, from: base, to: base.Add(span), started: started}
	for _, t := range townships {
		l.communities = append(l.communities, t.gen.communities...)
	}
	res.Listings = l.run(ctx, cfg)
	for _, lr := range res.Listings {
		benchkit.Progress(cfg.Progress, "feeds: mirror: %s: p50 %v, p99 %v, max %v (at +%v of the district) over %d requests (%d errors)",
			lr.Name, lr.Latency.P50, lr.Latency.P99, lr.Latency.Max, lr.SlowestAt.Round(time.Millisecond), lr.Requests, lr.Errors)
	}
	if res.Listed, res.ListedSettled, err = systems.SettledMem(ctx, pid, settleInterval, settleMax); err != nil {
		return res, err
	}
	benchkit.Progress(cfg.Progress, "feeds: mirror: after the listings VmRSS %s (RssAnon %s, RssFile %s)", benchkit.MiB(res.Listed.RSS), benchkit.MiB(res.Listed.Anon), benchkit.MiB(res.Listed.File))
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	res.HeapInuse = ms.HeapInuse
	if res.Collected, err = systems.ReadMem(pid); err != nil {
		return res, err
	}
	if res.DataDisk, res.DataApparent, err = systems.DirSize(district.DataPath()); err != nil {
		return res, fmt.Errorf("mirrorbench: size the district's data: %w", err)
	}
	res.RSS = res.Listed.RSS - res.Baseline.RSS
	res.RSSMet = res.RSS <= res.TargetRSS
	res.AnonMet = res.Listed.Anon-res.Baseline.Anon <= res.TargetAnon
	if res.CasesJSON, err = casesJSON(townships); err != nil {
		return res, err
	}
	res.DiskRatio = float64(res.DataDisk) / float64(res.CasesJSON)
	res.DiskRatioMet = res.DiskRatio <= TargetDiskRatio
	return res, ctx.Err()
}

// waitLoaded waits until the district's cursor of every synthetic township reaches its head,
// sampling the process's memory every second and reporting progress every ten.
func waitLoaded(ctx context.Context, cfg Config, district *node.Node, totals map[string]uint64, t0 time.Time, res *MirrorResult) error {
	pid := os.Getpid()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	deadline := t0.Add(cfg.LoadTimeout)
	var lastMem, lastProgress time.Time
	var lastCount uint64
	for {
		now := time.Now()
		if now.Sub(lastMem) >= time.Second {
			lastMem = now
			if m, err := systems.ReadMem(pid); err == nil && m.RSS > res.Peak.RSS {
				res.Peak = m
			}
		}
		cursors, err := district.State().FeedCursors()
		if err != nil {
			return fmt.Errorf("mirrorbench: read the district's cursors: %w", err)
		}
		done := true
		res.Mirrored = 0
		for site, total := range totals {
			cur := cursors[site].Cursor
			res.Mirrored += cur
			done = done && cur >= total
		}
		if done {
			return nil
		}
		if now.Sub(lastProgress) >= 10*time.Second {
			if !lastProgress.IsZero() {
				benchkit.Progress(cfg.Progress, "feeds: mirror: %d of %d mirrored (%.0f/s over the last %v), VmRSS %s",
					res.Mirrored, cfg.MirrorCases, float64(res.Mirrored-lastCount)/now.Sub(lastProgress).Seconds(), now.Sub(lastProgress).Round(time.Second), benchkit.MiB(res.Peak.RSS))
			}
			lastProgress, lastCount = now, res.Mirrored
		}
		if now.After(deadline) {
			return fmt.Errorf("mirrorbench: after %v only %d of %d cases mirrored", cfg.LoadTimeout, res.Mirrored, cfg.MirrorCases)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-district.Done():
			return fmt.Errorf("mirrorbench: the district node stopped during the load")
		case <-tick.C:
		}
	}
}

// Quiet: this process under quietCPU of one CPU over quietWindow.
const (
	quietCPU    = 0.10
	quietWindow = 2 * time.Second
)

// waitQuiet waits until this process goes quiet or limit passes, and returns how long it took
// and whether it went quiet.
func waitQuiet(ctx context.Context, limit time.Duration) (time.Duration, bool, error) {
	type sample struct {
		at  time.Time
		cpu time.Duration
	}
	start := time.Now()
	var samples []sample
	for {
		now := time.Now()
		cpu, err := processCPU()
		if err != nil {
			return 0, false, err
		}
		samples = append(samples, sample{now, cpu})
		for len(samples) > 1 && now.Sub(samples[1].at) >= quietWindow {
			samples = samples[1:]
		}
		if first := samples[0]; now.Sub(first.at) >= quietWindow && float64(cpu-first.cpu) < quietCPU*float64(now.Sub(first.at)) {
			return now.Sub(start), true, nil
		}
		if now.Sub(start) >= limit {
			return now.Sub(start), false, nil
		}
		select {
		case <-ctx.Done():
			return now.Sub(start), false, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// processCPU is the CPU time this process has used, user and system.
func processCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// casesJSON is the total size of the townships' cases as the API encodes them, each case once
// (entry n of a synthetic feed is always the same case, and no case appears twice).
func casesJSON(townships []*synthTownship) (int64, error) {
	var total int64
	for _, s := range townships {
		for seq := uint64(1); seq <= s.gen.total; seq++ {
			e, err := s.gen.entry(seq)
			if err != nil {
				return 0, err
			}
			b, err := json.Marshal(e.Case)
			if err != nil {
				return 0, err
			}
			total += int64(len(b))
		}
	}
	return total, nil
}
