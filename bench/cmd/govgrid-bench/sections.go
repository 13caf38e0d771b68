package main

import (
	"fmt"
	"io"
	"os"

	"github.com/govgrid/govgrid/bench/convergebench"
	"github.com/govgrid/govgrid/bench/handoffbench"
	"github.com/govgrid/govgrid/bench/mirrorbench"
)

// The in-process benchmarks (handoff, feeds, converge) each run in a directory of their own
// and report a section: their result, what they measured before an error, and the error.

// runInWorkDir runs a benchmark in a new directory under --workdir, named after it, removed
// when it returns. It returns the result if measured says it holds a measurement (else nil),
// and the error's message ("" for none), which it also logs after name.
func runInWorkDir[R any](o options, name string, run func(dir string) (R, error), measured func(R) bool) (*R, string) {
	dir, err := os.MkdirTemp(o.workDir, "govgrid-"+name+"-")
	if err != nil {
		return nil, err.Error()
	}
	defer os.RemoveAll(dir)
	res, err := run(dir)
	var got *R
	if measured(res) {
		got = &res
	}
	if err != nil {
		logf("%s: %v", name, err)
		return got, err.Error()
	}
	return got, ""
}

// printSections writes the sections of the in-process benchmarks that ran.
func printSections(w io.Writer, r *report) {
	printSection(w, "handoff", r.Handoff, handoffbench.Print, r.HandoffError)
	printSection(w, "feeds", r.Feeds, mirrorbench.Print, r.FeedsError)
	printSection(w, "convergence", r.Converge, convergebench.Print, r.ConvergeError)
}

// printSection writes a benchmark's section with print, if it measured anything, then why it
// failed, if it did.
func printSection[R any](w io.Writer, name string, res *R, print func(io.Writer, R), failed string) {
	if res != nil {
		print(w, *res)
	}
	if failed != "" {
		fmt.Fprintln(w, "\n"+name+" benchmark failed:", failed)
	}
}
