package handoffbench

import (
	"fmt"
	"io"
	"time"

	"github.com/govgrid/govgrid/bench/internal/benchkit"
)

// Print writes r as a markdown section: one table with the targets, then notes.
func Print(w io.Writer, r Result) {
	fmt.Fprintln(w, "\n## Handoff: community → township → district")
	fmt.Fprintf(w, "\n- grid: in-process nodes on 127.0.0.1 (real Raft, gossip, gRPC; production Raft timings): %s; ready in %v\n",
		r.Grid, r.Setup.Round(100*time.Millisecond))
	benchkit.TableHeader(w)
	if l := r.Latency; l != nil {
		fmt.Fprintf(w, "| relay community → township → district, %d in flight (%d cases): p50 | %s | | |\n", l.InFlight, l.Total.Count, benchkit.FmtDur(l.Total.P50))
		fmt.Fprintf(w, "| relay: p99 | %s | ≤ %v | %s |\n", benchkit.FmtDur(l.Total.P99), l.Target, benchkit.YesNo(l.Met))
		fmt.Fprintf(w, "| relay: max | %s | | |\n", benchkit.FmtDur(l.Total.Max))
	}
	if t := r.Throughput; t != nil {
		fmt.Fprintf(w, "| through one township, %d communities × %d submitters: arrivals committed at the township | %.0f /s | ≥ %.0f /s | %s |\n", t.Communities, t.Submitters, t.TownshipPerSec, TargetThroughput, benchkit.YesNo(t.TownshipPerSec >= TargetThroughput))
		fmt.Fprintf(w, "| through one township: handed on and committed at the district | %.0f /s | | |\n", t.DistrictPerSec)
	}
	if l := r.OpenLoop; l != nil {
		fmt.Fprintf(w, "| relay, open loop at %.0f cases/s (half the township's rate; %d cases): p50 | %s | | |\n", l.Rate, l.Total.Count, benchkit.FmtDur(l.Total.P50))
		fmt.Fprintf(w, "| relay, open loop: p99 | %s | ≤ %v | %s |\n", benchkit.FmtDur(l.Total.P99), l.Target, benchkit.YesNo(l.Met))
		fmt.Fprintf(w, "| relay, open loop: max | %s | | |\n", benchkit.FmtDur(l.Total.Max))
	}
	if d := r.Drain; d != nil && d.Drained > 0 {
		fmt.Fprintf(w, "| drain %d queued handoffs after a %v partition heals: time | %s | ≤ %v | %s |\n", d.Cases, d.Cut.Round(time.Second), benchkit.FmtDur(d.Drained), TargetDrain, benchkit.YesNo(d.Met))
		fmt.Fprintf(w, "| drain: first handoff taken in after healing | %s | | |\n", benchkit.FmtDur(d.FirstArrival))
		fmt.Fprintf(w, "| drain: rate, over the whole drain / once deliveries flowed | %.0f /s / %.0f /s | | |\n", d.PerSec, d.TransferPerSec)
	}
	fmt.Fprintln(w)
	if l := r.Latency; l != nil && l.ToTownship.Count > 0 {
		fmt.Fprintf(w, "- relay: the submit call at the community until the district leader holds the case, not in transit; closed loop, %v warmup, %v measured\n", l.Warmup, l.Elapsed.Round(time.Millisecond))
		fmt.Fprintf(w, "- relay parts, p50 / p99: submit → township took it in %s / %s; township → district took it in %s / %s; district quorum commit + seen held %s / %s (observed every %v)\n",
			benchkit.FmtDur(l.ToTownship.P50), benchkit.FmtDur(l.ToTownship.P99), benchkit.FmtDur(l.ToDistrict.P50), benchkit.FmtDur(l.ToDistrict.P99),
			benchkit.FmtDur(l.Commit.P50), benchkit.FmtDur(l.Commit.P99), PollInterval)
	}
	if l := r.Latency; l != nil && l.Errors > 0 {
		fmt.Fprintf(w, "- relay: %d cases failed (first: %s)\n", l.Errors, l.FirstError)
	}
	if l := r.OpenLoop; l != nil && l.ToTownship.Count > 0 {
		fmt.Fprintf(w, "- relay, open loop: cases started on a fixed schedule over all communities whatever the answers, each timed from its scheduled start; parts p50 / p99: to the township %s / %s, township → district %s / %s, district commit + seen %s / %s\n",
			benchkit.FmtDur(l.ToTownship.P50), benchkit.FmtDur(l.ToTownship.P99), benchkit.FmtDur(l.ToDistrict.P50), benchkit.FmtDur(l.ToDistrict.P99),
			benchkit.FmtDur(l.Commit.P50), benchkit.FmtDur(l.Commit.P99))
		if l.Errors > 0 {
			fmt.Fprintf(w, "- relay, open loop: %d cases failed (first: %s)\n", l.Errors, l.FirstError)
		}
	}
	if t := r.Throughput; t != nil {
		fmt.Fprintf(w, "- through one township: district-decided cases, each one arrival committed at the township (and queued on in the same commit) and one at the district; at most about %d accepted and not yet at the district. Counted by the leaders' govgrid_handoffs_received_total over %v after a %v warmup; all %d cases then held at the district %v after the submitters stopped; %d refused\n",
			t.Backlog, t.Elapsed.Round(time.Millisecond), t.Warmup, t.Submitted, t.Settle.Round(time.Millisecond), t.Refused)
		if t.Errors > 0 {
			fmt.Fprintf(w, "- through one township: %d submissions failed (first: %s)\n", t.Errors, t.FirstError)
		}
	}
	if d := r.Drain; d != nil && d.Drained > 0 {
		fmt.Fprintf(w, "- drain: township-decided cases queued at one community (in %v) while its links to the township (gRPC, Raft, gossip, both ways) were cut for %v; timed from healing until the community's outbox was empty, after which the township held %d of %d\n",
			d.Queue.Round(time.Millisecond), d.Cut.Round(time.Millisecond), d.Held, d.Cases)
	}
}
