// Package mirrorbench measures feeds and the district's mirror, the grid issue's feeds benchmark:
//
//   - visibility lag: a steady open-loop stream of cases accepted at communities (spread
//     round-robin over them, decided where they are accepted, so they stay there); for each,
//     the time from the submit call at the community until the district's mirror has it
//     (sitestate.State.MirrorCase succeeds at the district leader, which is what a subtree
//     listing there reads). The case travels community feed → township puller and mirror →
//     township feed → district puller and mirror.
//   - a district mirror of 1,000,000 cases, loaded through feeds: a real 1-node district pulls
//     them from synthetic townships, then subtree listings by status (with paging and filters)
//     are timed over HTTP and the process's resident memory is read.
//
// Everything runs in this process, the nodes started by the test grid harness (testgrid:
// node.New on 127.0.0.1, ports chosen by the OS, real Raft, gossip and gRPC) with production
// timings. The visibility grid is a 1-node district, 2 townships of 1 node and 8 communities of
// 1 node (4 per township).
//
// The synthetic townships of the mirror phase are not nodes: each is a gRPC server implementing
// only Cluster.Feed (the protocol of node's feed endpoint, with node's FeedBatchEntries,
// FeedBatchBytes, FeedWindow and FeedHeartbeat, generating valid entries on the fly), a
// memberlist member of the district's gossip pool advertising that server as a township node,
// and one Cluster.RegisterSites call, as a township's leader makes. The district cannot tell
// them from real townships: its own leader runs one puller per registered child, finds the
// child's node through gossip, and commits every batch through its Raft log and FSM
// (sitestate.State.MirrorChild), exactly as in production. Only the townships' own Raft
// writes (and their communities') are skipped: the load measures the district's side alone,
// plus the CPU this process spends generating entries, which the result reports.
package mirrorbench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/govgrid/govgrid/bench/internal/benchkit"
	"github.com/govgrid/govgrid/bench/systems"
)

// Targets from the issue.
const (
	// TargetVisibilityP99 is the most the visibility lag's 99th percentile may be.
	TargetVisibilityP99 = time.Second
	// TargetListP99 is the most a subtree listing request's 99th percentile may be.
	TargetListP99 = 50 * time.Millisecond
	// TargetRSS is the most the district node's resident memory may be with the mirror loaded.
	TargetRSS = 1 << 30
	// TargetAnon is the most of that resident memory the process may own (RssAnon, issue 12);
	// the rest is badger's mapped files, page cache the kernel takes back under pressure.
	TargetAnon = 256 << 20
	// TargetDiskRatio is the most the district's data directory may be, on disk, per byte of
	// the mirrored cases as API JSON (issue 12).
	TargetDiskRatio = 1.5
)

// Config sizes one run. Zero sizes take the values of Defaults; Visibility and Mirror choose the
// phases (Defaults runs both); Warmup, QuietMax and ListFor may be zero (none).
type Config struct {
	// Visibility runs the visibility-lag phase.
	Visibility bool
	// Rate is the offered load of the visibility phase in cases per second, spread
	// round-robin over the communities; each submission is started on schedule whether or not
	// earlier ones have finished (open loop).
	Rate float64
	// Townships and Communities shape the visibility grid: the communities are spread evenly
	// over the townships.
	Townships   int
	Communities int
	// Warmup precedes the measured window; its cases are submitted but not recorded.
	Warmup time.Duration
	// Duration is the visibility phase's measured window.
	Duration time.Duration
	// SettleTimeout bounds the wait, after the window, for the window's last cases to reach
	// the district; a case not there by then counts as unseen.
	SettleTimeout time.Duration

	// Mirror runs the mirror phase.
	Mirror bool
	// MirrorCases is how many cases the district's mirror is loaded with, through the feeds of
	// MirrorTownships synthetic townships (split evenly), each with MirrorCommunities
	// communities beneath it holding most of its cases.
	MirrorCases       int
	MirrorTownships   int
	MirrorCommunities int
	// MirrorSpan is the time the cases' creation times are spread over (ending at the start
	// of the run).
	MirrorSpan time.Duration
	// LoadTimeout bounds loading the mirror.
	LoadTimeout time.Duration
	// ListPages is how many pages deep the paged listing follows next_page_token (then it
	// starts from the top again) and the least number of requests it makes; ListSamples is the
	// least number of requests of each filtered listing.
	ListPages   int
	ListSamples int
	// ListFor is the least time the listings go on for: more than a minute takes in one of the
	// district's value-log collections (every minute), which a listing meets as often in use.
	// Zero sets no least time.
	ListFor time.Duration
	// PageSize is the listings' page_size.
	PageSize int
	// QuietMax bounds the wait, after the load, for the district to go quiet before the
	// listings are timed: a district holding a million cases is not one that took them in a
	// minute ago, and on a small machine the bulk load's compactions still take a CPU for a
	// while. Quiet is this process under 10% of one CPU over 2 s. Zero skips the wait.
	QuietMax time.Duration

	// Dir holds the nodes' data.
	Dir string
	// Progress, if set, receives a line per phase and progress while loading.
	Progress io.Writer
	// Logger receives the nodes' logs; nil discards them.
	Logger *slog.Logger
}

// Defaults are the sizes of the issue.
var Defaults = Config{
	Visibility:        true,
	Rate:              500,
	Townships:         2,
	Communities:       8,
	Warmup:            2 * time.Second,
	Duration:          20 * time.Second,
	SettleTimeout:     30 * time.Second,
	Mirror:            true,
	MirrorCases:       1_000_000,
	MirrorTownships:   4,
	MirrorCommunities: 4,
	MirrorSpan:        180 * 24 * time.Hour,
	LoadTimeout:       30 * time.Minute,
	ListPages:         200,
	ListSamples:       200,
	PageSize:          50,
	QuietMax:          2 * time.Minute,
	ListFor:           65 * time.Second,
}

// withDefaults is c with its zero fields taken from Defaults, but for the phases (Visibility,
// Mirror) and the times whose zero means none (Warmup, QuietMax, ListFor).
func (c Config) withDefaults() Config {
	benchkit.FillZero(&c, Defaults, "Visibility", "Mirror", "Warmup", "QuietMax", "ListFor")
	return c
}

// maxPerHolder is the most cases one synthetic site may hold: case numbers have six digits.
const maxPerHolder = 999_999

// Validate reports the first size that cannot be run.
func (c Config) Validate() error {
	switch {
	case !c.Visibility && !c.Mirror:
		return errors.New("mirrorbench: neither phase is selected")
	case c.Dir == "":
		return errors.New("mirrorbench: a data directory is required")
	}
	if c.Visibility {
		switch {
		case c.Rate <= 0 || c.Rate > 100_000:
			return errors.New("mirrorbench: rate must be above 0 and at most 100000 cases/s")
		case c.Townships < 1 || c.Townships > 9:
			return errors.New("mirrorbench: townships must be 1 to 9")
		case c.Communities < c.Townships || c.Communities > 99:
			return errors.New("mirrorbench: communities must be at least one per township and at most 99")
		case c.Duration <= 0 || c.Warmup < 0:
			return errors.New("mirrorbench: duration must be positive and warmup not negative")
		case c.SettleTimeout <= 0:
			return errors.New("mirrorbench: settle timeout must be positive")
		}
	}
	if c.Mirror {
		switch {
		case c.MirrorCases < 1:
			return errors.New("mirrorbench: mirror cases must be at least 1")
		case c.MirrorTownships < 1 || c.MirrorTownships > 99:
			return errors.New("mirrorbench: mirror townships must be 1 to 99")
		case c.MirrorCommunities < 1 || c.MirrorCommunities > 99:
			return errors.New("mirrorbench: mirror communities must be 1 to 99 per township")
		case perHolder(c.MirrorCases, c.MirrorTownships, c.MirrorCommunities) > maxPerHolder:
			return fmt.Errorf("mirrorbench: %d cases over %d townships of %d communities put more than %d cases at one site (case numbers have six digits): add townships or communities",
				c.MirrorCases, c.MirrorTownships, c.MirrorCommunities, maxPerHolder)
		case c.MirrorSpan <= 0 || c.LoadTimeout <= 0 || c.QuietMax < 0 || c.ListFor < 0:
			return errors.New("mirrorbench: mirror span and load timeout must be positive, quiet and listing times not negative")
		case c.ListPages < 1 || c.ListSamples < 1:
			return errors.New("mirrorbench: list pages and samples must be at least 1")
		case c.PageSize < 1 || c.PageSize > 500:
			return errors.New("mirrorbench: page size must be 1 to 500")
		}
	}
	return nil
}

// Dist is a latency distribution (nearest-rank percentiles), shared with the other benchmarks.
type Dist = benchkit.Dist

// Result is everything one run measured. A phase that did not run is nil.
type Result struct {
	Visibility *VisibilityResult `json:"visibility,omitempty"`
	Mirror     *MirrorResult     `json:"mirror,omitempty"`
}

// VisibilityResult is the visibility lag: submit call at a community → in the district's mirror.
type VisibilityResult struct {
	// Grid describes the grid; Setup is the time from starting the first node until every
	// site had a leader, the district's registry listed every site, and one case of each
	// community had reached the district (every puller connected).
	Grid        string        `json:"grid"`
	Townships   int           `json:"townships"`
	Communities int           `json:"communities"`
	Setup       time.Duration `json:"setup_ns"`
	// Rate is the offered load (cases/s); Warmup and Elapsed the unrecorded lead-in and the
	// measured window.
	Rate    float64       `json:"offered_per_sec"`
	Warmup  time.Duration `json:"warmup_ns"`
	Elapsed time.Duration `json:"elapsed_ns"`
	// Offered is the submissions scheduled in the window, Accepted those the communities
	// committed; AcceptedPerSec is Accepted / Elapsed.
	Offered        int     `json:"offered"`
	Accepted       int     `json:"accepted"`
	AcceptedPerSec float64 `json:"accepted_per_sec"`
	// MaxSlip is how late the generator started a submission against its schedule;
	// MaxInFlight the most submit calls outstanding at once.
	MaxSlip     time.Duration `json:"max_schedule_slip_ns"`
	MaxInFlight int           `json:"max_in_flight"`
	// Sustained is whether the machine kept up with Rate: at least 99% of the offered cases
	// accepted and no submission started later than Target (a generator that late would hide
	// a lag of that size).
	Sustained bool `json:"rate_sustained"`
	// Submit is the submit call's own latency (until the community committed the case).
	Submit Dist `json:"submit_call"`
	// Lag is the visibility lag of every accepted case of the window that reached the
	// district; Unseen counts those that did not within SettleTimeout after the window.
	Lag    Dist `json:"lag"`
	Unseen int  `json:"unseen"`
	// The parts of Lag, from timestamps the leaders put on the commands they proposed (all
	// in this process, so the clocks agree): Accept runs from the submit call to the
	// community leader's stamp on the case; ToTownship from there to the township leader's
	// proposal of the mirror batch holding it; ToDistrict from there to the district
	// leader's; Seen from there to this benchmark seeing it in the district's mirror (the
	// district's commit and apply, plus up to PollInterval).
	Accept     Dist `json:"accept"`
	ToTownship Dist `json:"to_township"`
	ToDistrict Dist `json:"to_district"`
	Seen       Dist `json:"district_commit_seen"`
	// Settle is how long after the window the last case took to arrive.
	Settle     time.Duration `json:"settle_ns"`
	Errors     int           `json:"submit_errors"`
	FirstError string        `json:"first_error,omitempty"`
	// Met is whether Lag.P99 is within Target and no case went unseen.
	Target time.Duration `json:"target_p99_ns"`
	Met    bool          `json:"target_met"`
}

// MirrorResult is the district's mirror loaded through feeds, its listings and its memory.
type MirrorResult struct {
	Cases       int `json:"cases"`
	Townships   int `json:"synthetic_townships"`
	Communities int `json:"synthetic_communities_per_township"`
	// PageSize is the listings' page_size; ListFor their least duration.
	PageSize int           `json:"page_size"`
	ListFor  time.Duration `json:"list_for_ns"`
	// EntryBytes is the mean size of a feed entry (JSON) as served.
	EntryBytes int `json:"mean_entry_bytes"`
	// Load runs from the first registration to every township's cursor at the district
	// reaching its head; PerSec is Cases / Load. Mirrored is the sum of the cursors at the end.
	Load     time.Duration `json:"load_ns"`
	PerSec   float64       `json:"entries_per_sec"`
	Mirrored uint64        `json:"mirrored"`
	// Served is the entries the synthetic townships sent (re-sent ones included) and
	// Reconnects the feed streams opened beyond one per township (each a puller restart).
	Served     uint64 `json:"entries_served"`
	Reconnects int    `json:"reconnects"`
	// GenerateCPU is the time the synthetic townships spent building and encoding entries:
	// CPU this process spent on the load that a real district would not.
	GenerateCPU time.Duration `json:"generate_ns"`
	// Listings are the timed subtree listings.
	Listings []ListingResult `json:"listings,omitempty"`
	// QuietWait is how long the district took after the load to go quiet (see
	// Config.QuietMax); Quieted is false when it was still busy at QuietMax and the listings
	// were timed anyway.
	QuietWait time.Duration `json:"quiet_wait_ns"`
	Quieted   bool          `json:"quieted"`
	// Memory of this process (/proc/self/status): Baseline just before the district started
	// (after a GC that returned free memory to the OS), Peak the highest VmRSS sampled each
	// second while loading, Loaded after the load, Listed after the listings (both settled).
	// The district's share is each minus Baseline; what remains in it of the synthetic
	// townships (entries are generated a batch at a time, and they are idle once the load is
	// done) and the listing client is small.
	Baseline      systems.Mem `json:"baseline"`
	Peak          systems.Mem `json:"peak_during_load"`
	Loaded        systems.Mem `json:"loaded"`
	LoadedSettled bool        `json:"loaded_settled"`
	Listed        systems.Mem `json:"listed"`
	ListedSettled bool        `json:"listed_settled"`
	// Collected is read last, after a forced collection that hands free memory back to the
	// OS (debug.FreeOSMemory): a lower bound, since a running node carries garbage up to the
	// GC's headroom (GOGC) and an idle one is only collected every two minutes.
	Collected systems.Mem `json:"after_forced_gc"`
	// HeapInuse is the Go heap in use at the end (after the forced GC), whole process.
	HeapInuse uint64 `json:"heap_inuse_bytes"`
	// DataDisk and DataApparent size the district's data directory after the listings.
	DataDisk     int64 `json:"data_dir_disk_bytes"`
	DataApparent int64 `json:"data_dir_apparent_bytes"`
	// CasesJSON is the total size of the mirrored cases as the API's JSON (each case once, as
	// GET /v1/cases/{number} encodes it), what DataDisk is judged against: DiskRatio is
	// DataDisk ÷ CasesJSON, at most TargetDiskRatio (issue 12).
	CasesJSON    int64   `json:"cases_json_bytes"`
	DiskRatio    float64 `json:"data_dir_disk_to_json"`
	DiskRatioMet bool    `json:"data_dir_disk_target_met"`
	TargetAnon   int64   `json:"target_rss_anon_bytes"`
	AnonMet      bool    `json:"rss_anon_target_met"`
	// RSS is the district's resident memory as judged: Listed VmRSS − Baseline, the district
	// holding the mirror and serving listings. Peak and Loaded are reported beside it.
	RSS       int64 `json:"district_rss_bytes"`
	TargetRSS int64 `json:"target_rss_bytes"`
	RSSMet    bool  `json:"rss_target_met"`
}

// ListingResult is one kind of subtree listing, timed over HTTP at the district.
type ListingResult struct {
	// Name says what was listed; Example is one request's path and query.
	Name    string `json:"name"`
	Example string `json:"example"`
	// Requests made, Cases returned in all.
	Requests int  `json:"requests"`
	Cases    int  `json:"cases"`
	Latency  Dist `json:"latency"`
	// Errors counts failed requests and wrong answers (a case not matching the filter, a short
	// page with more to come, a case listed twice while paging).
	Errors     int    `json:"errors"`
	FirstError string `json:"first_error,omitempty"`
	// SlowestAt is when the slowest request started, counted from the district's start
	// (badger's value-log GC runs a minute after it opened, and every minute after).
	SlowestAt time.Duration `json:"slowest_at_ns"`
	Target    time.Duration `json:"target_p99_ns"`
	Met       bool          `json:"target_met"`
}

// Run measures the selected phases in order (visibility, then mirror), each on its own nodes,
// stopped before it returns. On an error it returns what was measured so far with the error.
func Run(ctx context.Context, cfg Config) (res Result, err error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return res, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	err = benchkit.RunPhases(ctx, cfg.Progress, "feeds",
		benchkit.NewPhase("visibility", cfg.Visibility, &res.Visibility, cfg.runVisibility),
		benchkit.NewPhase("mirror", cfg.Mirror, &res.Mirror, cfg.runMirror))
	return res, err
}
