package convergebench

import (
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/govgrid/govgrid/bench/internal/benchkit"
	"github.com/govgrid/govgrid/node"
)

// Print writes r as a markdown section: one table with the target, then notes.
func Print(w io.Writer, r Result) {
	fmt.Fprintln(w, "\n## Convergence after a silent cut: community ↔ township")
	fmt.Fprintf(w, "\n- grid: %s; the community black-holed from every other node (testgrid.BlackholeNode: nothing refused, nothing arrives); the clerks' calls are signed in (a bearer token each, which the node verifies); the nodes, the clerks' calls and the watcher share this machine's %d CPUs\n", r.Grid, runtime.NumCPU())
	benchkit.TableHeader(w)
	if c := r.Cycles; c != nil {
		fmt.Fprintf(w, "| %d cycles, each cut for %v (%d cases at the community, %d escalated; %d at the township, %d handed down): time to converge after healing, p50 | %s | | |\n",
			c.Cycles, c.Cut, c.CommunityCases, c.Escalate, c.TownshipCases, c.HandDown, benchkit.FmtDur(c.Converge.P50))
		fmt.Fprintf(w, "| cycles: p99 (%d converged) | %s | ≤ %v | %s |\n", c.Converge.Count, benchkit.FmtDur(c.Converge.P99), TargetConverge, benchkit.YesNo(c.Met))
		fmt.Fprintf(w, "| cycles: max | %s | | |\n", benchkit.FmtDur(c.Converge.Max))
		fmt.Fprintf(w, "| cycles not converged within the timeout | %d of %d | 0 | %s |\n", c.Failed, len(c.Samples), benchkit.YesNo(c.Failed == 0))
		fmt.Fprintf(w, "| cycles: parts, p50 / p99: handoffs delivered; township's mirror; district's mirror | %s / %s; %s / %s; %s / %s | | |\n",
			benchkit.FmtDur(c.Handoffs.P50), benchkit.FmtDur(c.Handoffs.P99), benchkit.FmtDur(c.Township.P50), benchkit.FmtDur(c.Township.P99),
			benchkit.FmtDur(c.District.P50), benchkit.FmtDur(c.District.P99))
		fmt.Fprintf(w, "| cycles: every case listed once by every ancestor, with its holder (HTTP API) | %s | | %s |\n", okOr(c.Settled), benchkit.YesNo(c.Settled == ""))
	}
	if d := r.Day; d != nil {
		conv := benchkit.FmtDur(d.Converged)
		if d.Missing != "" {
			conv = "not converged"
		}
		fmt.Fprintf(w, "| a day, time-compressed into one cut of %v (%d cases at the community, %d escalated; %d at the township, %d handed down): time to converge | %s | ≤ %v | %s |\n",
			d.Cut.Round(time.Second), d.CommunityCases, d.Escalated, d.TownshipCases, d.HandedDown, conv, TargetConverge, benchkit.YesNo(d.Met))
		fmt.Fprintf(w, "| day: parts: handoffs delivered; township's mirror; district's mirror | %s; %s; %s | | |\n",
			benchkit.FmtDur(d.Handoffs), benchkit.FmtDur(d.Township), benchkit.FmtDur(d.District))
		fmt.Fprintf(w, "| day: nothing accepted offline missing or doubled at any ancestor (HTTP API) | %s | | %s |\n", okOr(d.Settled), benchkit.YesNo(d.Settled == "" && d.Missing == ""))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "- time to converge: from healing until both outboxes were empty with every moved case held by its target, and the township's and the district's mirrors held every case accepted on either side during the cut at its holder's version; read from the nodes' state every %v\n", PollInterval)
	if c := r.Cycles; c != nil {
		fmt.Fprintf(w, "- cycles: the cases are accepted and moved over the nodes' HTTP API, spread over the cut; the link stays up %v after each convergence; with %d cycles the p99 is %s. The township first committed a batch of the community's feed %s / %s (p50 / p99) after healing\n",
			c.Gap, len(c.Samples), slowest(len(c.Samples)-rankP99(len(c.Samples))+1), benchkit.FmtDur(c.FeedResumed.P50), benchkit.FmtDur(c.FeedResumed.P99))
		for i, s := range c.Samples {
			if s.Missing != "" {
				fmt.Fprintf(w, "- cycle %d: not converged: %s\n", i+1, s.Missing)
			}
		}
	}
	if d := r.Day; d != nil {
		fmt.Fprintf(w, "- day: at healing the township was %d entries behind the community's feed (the feed window is %d), %d handoffs waited at the community and %d at the township; the feed resumed %s after healing, the first escalation arrived %s after, the first hand-down %s after\n",
			d.FeedBehind, node.FeedWindow, d.OutboxUp, d.OutboxDown, benchkit.FmtDur(d.FeedResumed), benchkit.FmtDur(d.FirstUp), benchkit.FmtDur(d.FirstDown))
		if d.Missing != "" {
			fmt.Fprintf(w, "- day: not converged: %s\n", d.Missing)
		}
	}
}

// okOr is "all" for an empty problem, else the problem.
func okOr(problem string) string {
	if problem == "" {
		return "all"
	}
	return "**" + problem + "**"
}

// rankP99 is the nearest rank of the 99th percentile among n samples.
func rankP99(n int) int {
	r := (99*n + 99) / 100
	return min(max(r, 1), n)
}

// slowest names the k-th slowest sample: "the slowest", "the 2nd slowest", ...
func slowest(k int) string {
	switch {
	case k <= 1:
		return "the slowest"
	case k == 2:
		return "the 2nd slowest"
	case k == 3:
		return "the 3rd slowest"
	}
	return fmt.Sprintf("the %dth slowest", k)
}
