package mirrorbench

import (
	"fmt"
	"io"
	"time"

	"github.com/govgrid/govgrid/bench/internal/benchkit"
	"github.com/govgrid/govgrid/bench/systems"
	"github.com/govgrid/govgrid/node"
)

// Print writes r as a markdown section: one table with the targets, then notes.
func Print(w io.Writer, r Result) {
	if r.Visibility == nil && r.Mirror == nil {
		return
	}
	fmt.Fprintln(w, "\n## Feeds: visibility at the district, and a district mirror of the whole subtree")
	v, m := r.Visibility, r.Mirror
	if v != nil {
		fmt.Fprintf(w, "\n- visibility grid: in-process nodes on 127.0.0.1 (real Raft, gossip, gRPC; production Raft timings): %s; ready in %v\n",
			v.Grid, v.Setup.Round(100*time.Millisecond))
	}
	if m != nil {
		fmt.Fprintf(w, "- mirror: a 1-node district (in-process node, production settings) pulling %d synthetic townships' feeds (%d communities each) through its own pullers, Raft log and FSM\n",
			m.Townships, m.Communities)
	}
	benchkit.TableHeader(w)
	if v != nil {
		fmt.Fprintf(w, "| visibility lag, submit at a community → in the district's mirror, %.0f cases/s over %d communities (%d cases): p50 | %s | | |\n",
			v.Rate, v.Communities, v.Lag.Count, benchkit.FmtDur(v.Lag.P50))
		fmt.Fprintf(w, "| visibility lag: p99 | %s | ≤ %v | %s |\n", benchkit.FmtDur(v.Lag.P99), v.Target, benchkit.YesNo(v.Met))
		fmt.Fprintf(w, "| visibility lag: max | %s | | |\n", benchkit.FmtDur(v.Lag.Max))
		fmt.Fprintf(w, "| visibility: cases accepted | %.0f /s of %.0f offered%s | | |\n", v.AcceptedPerSec, v.Rate, sustained(v))
	}
	if m != nil {
		if m.Load > 0 {
			fmt.Fprintf(w, "| mirror: %s cases loaded through feeds | %s, %.0f entries/s | | |\n", thousands(m.Cases), benchkit.FmtDur(m.Load), m.PerSec)
		}
		for _, l := range m.Listings {
			fmt.Fprintf(w, "| subtree listing %s, pages of %d: p50 / p99 / max | %s / %s / %s | ≤ %v (p99) | %s |\n",
				l.Name, m.PageSize, benchkit.FmtDur(l.Latency.P50), benchkit.FmtDur(l.Latency.P99), benchkit.FmtDur(l.Latency.Max), l.Target, benchkit.YesNo(l.Met))
		}
		if m.Peak.RSS > 0 {
			fmt.Fprintf(w, "| district RSS while loading, peak (process VmRSS − baseline) | %s | | |\n", benchkit.MiB(m.Peak.RSS-m.Baseline.RSS))
		}
		if m.Listed.RSS > 0 {
			fmt.Fprintf(w, "| district node RSS with %s cases mirrored, after the listings (process VmRSS − baseline) | %s (anon %s, file %s) | ≤ %s | %s |\n",
				thousands(m.Cases), benchkit.MiB(m.RSS), benchkit.MiB(m.Listed.Anon-m.Baseline.Anon), benchkit.MiB(m.Listed.File-m.Baseline.File), benchkit.MiB(m.TargetRSS), benchkit.YesNo(m.RSSMet))
			fmt.Fprintf(w, "| district node RssAnon with %s cases mirrored (− baseline) | %s | ≤ %s | %s |\n",
				thousands(m.Cases), benchkit.MiB(m.Listed.Anon-m.Baseline.Anon), benchkit.MiB(m.TargetAnon), benchkit.YesNo(m.AnonMet))
		}
		if m.CasesJSON > 0 {
			fmt.Fprintf(w, "| district data directory on disk ÷ the mirrored cases as API JSON (%s) | %s, %.2f× | ≤ %.1f× | %s |\n",
				benchkit.MiB(m.CasesJSON), benchkit.MiB(m.DataDisk), m.DiskRatio, TargetDiskRatio, benchkit.YesNo(m.DiskRatioMet))
		}
	}
	fmt.Fprintln(w)
	if v != nil {
		printVisibilityNotes(w, v)
	}
	if m != nil {
		printMirrorNotes(w, m)
	}
}

func printVisibilityNotes(w io.Writer, v *VisibilityResult) {
	fmt.Fprintf(w, "- visibility: open loop, each submission started on schedule (round-robin over the communities, decided there) whatever the earlier ones were doing; %v warmup, %v measured; timed from the submit call until sitestate.State.MirrorCase finds the case at the district leader (what a subtree listing there reads), observed every %v\n",
		v.Warmup, v.Elapsed.Round(time.Millisecond), PollInterval)
	if v.Accept.Count > 0 {
		fmt.Fprintf(w, "- visibility parts, p50 / p99: submit → community leader's stamp %s / %s; → township's mirror batch proposed %s / %s; → district's mirror batch proposed %s / %s; → district commit + seen %s / %s\n",
			benchkit.FmtDur(v.Accept.P50), benchkit.FmtDur(v.Accept.P99), benchkit.FmtDur(v.ToTownship.P50), benchkit.FmtDur(v.ToTownship.P99),
			benchkit.FmtDur(v.ToDistrict.P50), benchkit.FmtDur(v.ToDistrict.P99), benchkit.FmtDur(v.Seen.P50), benchkit.FmtDur(v.Seen.P99))
	}
	last := "before it ended"
	if v.Settle > 0 {
		last = benchkit.FmtDur(v.Settle) + " after it ended"
	}
	fmt.Fprintf(w, "- visibility: submit call p50 %s, p99 %s; at most %d calls in flight; generator at most %s behind schedule; last case of the window seen %s\n",
		benchkit.FmtDur(v.Submit.P50), benchkit.FmtDur(v.Submit.P99), v.MaxInFlight, benchkit.FmtDur(v.MaxSlip), last)
	if !v.Sustained {
		fmt.Fprintf(w, "- visibility: **this machine did not sustain %.0f cases/s**: %d of %d offered cases accepted, generator up to %s late\n",
			v.Rate, v.Accepted, v.Offered, benchkit.FmtDur(v.MaxSlip))
	}
	if v.Unseen > 0 {
		fmt.Fprintf(w, "- visibility: **%d accepted cases of the window were not in the district's mirror** when the wait ended\n", v.Unseen)
	}
	if v.Errors > 0 {
		fmt.Fprintf(w, "- visibility: %d submissions failed (first: %s)\n", v.Errors, v.FirstError)
	}
}

func printMirrorNotes(w io.Writer, m *MirrorResult) {
	fmt.Fprintf(w, "- mirror: each synthetic township is a gRPC server serving Cluster.Feed as node's feed endpoint does (batches of ≤ %d entries / %d KiB, ≤ %d unacknowledged), a gossip member advertising it, and one Cluster.RegisterSites; its entries are generated on the fly (casework.Accept, applications and grievances over %d item codes, 1–3 materials, mean %d bytes of JSON), two of every %d held by each community and one by the township\n",
		node.FeedBatchEntries, node.FeedBatchBytes>>10, node.FeedWindow, len(items), m.EntryBytes, 2*m.Communities+1)
	if m.Load > 0 {
		fmt.Fprintf(w, "- mirror load: from the registrations until every township's cursor at the district reached its head; %d entries served (%d reconnects); generating them took %s of this process's CPU\n",
			m.Served, m.Reconnects, benchkit.FmtDur(m.GenerateCPU))
	}
	if len(m.Listings) > 0 {
		switch {
		case m.QuietWait > 0 && m.Quieted:
			fmt.Fprintf(w, "- listings timed once the district had gone quiet after the load (this process under %.0f%% of one CPU over %v: waited %v)\n",
				100*quietCPU, quietWindow, m.QuietWait.Round(time.Second))
		case m.QuietWait > 0:
			fmt.Fprintf(w, "- listings timed while the district was still busy: it had not gone quiet %v after the load\n", m.QuietWait.Round(time.Second))
		default:
			fmt.Fprintln(w, "- listings timed right after the load")
		}
		fmt.Fprintf(w, "- listings: GET /v1/cases?scope=subtree&status=submitted at the district over HTTP, signed in (a bearer token the node verifies each time), one request at a time (the four kinds in turn, for at least %v: the district's badger collects its value logs every minute), timed until the body is read; examples:\n",
			m.ListFor)
		for _, l := range m.Listings {
			fmt.Fprintf(w, "  - %s: `%s` (%d requests, %d cases; the slowest %s after the district started)\n", l.Name, l.Example, l.Requests, l.Cases, l.SlowestAt.Round(100*time.Millisecond))
			if l.Errors > 0 {
				fmt.Fprintf(w, "    **%d errors** (first: %s)\n", l.Errors, l.FirstError)
			}
		}
	}
	if m.Baseline.RSS > 0 {
		fmt.Fprintf(w, "- memory (this process, /proc/self/status): baseline before the district %s; peak while loading %s; after the load %s%s; after the listings %s%s",
			rss(m.Baseline), rss(m.Peak), rss(m.Loaded), unsettled(m.LoadedSettled, m.Loaded.RSS), rss(m.Listed), unsettled(m.ListedSettled, m.Listed.RSS))
		fmt.Fprintf(w, "; after a forced GC that returned free memory to the OS (a lower bound) %s, Go heap in use %s\n", rss(m.Collected), benchkit.MiB(int64(m.HeapInuse)))
		fmt.Fprintln(w, "- the district's RSS is the process's VmRSS minus the baseline; the process also runs the synthetic townships (entries generated a batch at a time) and the listing client. RssFile is badger's memory-mapped tables and value logs: page cache the kernel reclaims under pressure")
	}
	if m.DataApparent > 0 {
		fmt.Fprintf(w, "- the district's data directory: %s on disk (du), %s apparent\n", benchkit.MiB(m.DataDisk), benchkit.MiB(m.DataApparent))
	}
}

func sustained(v *VisibilityResult) string {
	if v.Sustained {
		return ""
	}
	return " (**not sustained**)"
}

func rss(m systems.Mem) string {
	return benchkit.RSSParts(m.RSS, m.Anon, m.File)
}

func unsettled(settled bool, rss int64) string {
	if settled || rss == 0 {
		return ""
	}
	return fmt.Sprintf(" (still changing >1%% after %v)", settleMax)
}

// thousands writes n with thin separators: 1,000,000.
func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
