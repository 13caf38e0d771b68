package benchkit

import (
	"fmt"
	"io"
	"time"
)

// YesNo is a table's "met" cell: "yes", or a bold "no".
func YesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

// FmtDur shows a duration with about three significant digits, in seconds from one second on
// (FmtMillis below it), "—" for zero.
func FmtDur(d time.Duration) string {
	if d >= time.Second {
		return fmt.Sprintf("%.2f s", float64(d)/float64(time.Millisecond)/1000)
	}
	return FmtMillis(d)
}

// FmtMillis shows a latency with about three significant digits, in microseconds below a
// millisecond and in milliseconds from there on (a second is "1000 ms"), "—" for zero.
func FmtMillis(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	switch {
	case d == 0:
		return "—"
	case d < time.Millisecond:
		return fmt.Sprintf("%.0f µs", ms*1000)
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2f ms", ms)
	case d < 100*time.Millisecond:
		return fmt.Sprintf("%.1f ms", ms)
	default:
		return fmt.Sprintf("%.0f ms", ms)
	}
}

// TableHeader writes the head of a benchmark's results table, after a blank line: the
// measurement, its result, its target and whether it was met.
func TableHeader(w io.Writer) {
	fmt.Fprintln(w, "\n| measurement | result | target | met |")
	fmt.Fprintln(w, "|---|---:|---:|---|")
}

// MiB shows a byte count in mebibytes with one decimal.
func MiB(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// RSSParts shows a resident set size with its anonymous and file-backed parts.
func RSSParts(rss, anon, file int64) string {
	return fmt.Sprintf("VmRSS %s (RssAnon %s, RssFile %s)", MiB(rss), MiB(anon), MiB(file))
}
