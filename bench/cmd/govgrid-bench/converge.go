package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/govgrid/govgrid/bench/convergebench"
)

// convergeOptions are the convergence benchmark's flags.
type convergeOptions struct {
	run   bool
	quick bool
	// The sizes; those not set on the command line come from convergebench.Defaults, or from
	// convergebench.Quick with --converge-quick.
	cycles                int
	cut, gap              time.Duration
	day                   bool
	dayCut                time.Duration
	dayCases, dayEscalate int
	timeout               time.Duration
	// log, if set, is a file for the nodes' logs (debug level) and the benchmark's events.
	log string
	// set names the flags given on the command line.
	set map[string]bool
}

// register defines the convergence benchmark's flags on fs.
func (c *convergeOptions) register(fs *flag.FlagSet) {
	d := convergebench.Defaults
	fs.BoolVar(&c.run, "converge", true, "run the convergence benchmark (in-process grid): a community silently cut from its township while cases are accepted and moved on both sides, healed, timed until every handoff is delivered and every ancestor's mirror complete")
	fs.BoolVar(&c.quick, "converge-quick", false, fmt.Sprintf("short convergence run (%d cycles of %v, a day of %d cases in %v) for trying it out; flags given explicitly still apply",
		convergebench.Quick.Cycles, convergebench.Quick.Cut, convergebench.Quick.DayCases, convergebench.Quick.DayCut))
	fs.IntVar(&c.cycles, "converge-cycles", d.Cycles, "cut/heal cycles measured (0: none)")
	fs.DurationVar(&c.cut, "converge-cut", d.Cut, "how long each cycle's cut lasts")
	fs.DurationVar(&c.gap, "converge-gap", d.Gap, "how long the link stays up after a cycle converged, before the next cut")
	fs.BoolVar(&c.day, "converge-day", d.Day, "also run the day, time-compressed: one long cut with a day's cases at the community")
	fs.DurationVar(&c.dayCut, "converge-day-cut", d.DayCut, "the least length of the day's cut")
	fs.IntVar(&c.dayCases, "converge-day-cases", d.DayCases, "cases the community accepts during the day's cut")
	fs.IntVar(&c.dayEscalate, "converge-day-escalate", d.DayEscalate, "of the day's cases, how many the community escalates")
	fs.DurationVar(&c.timeout, "converge-timeout", d.Timeout, "the longest wait for convergence after healing")
	fs.StringVar(&c.log, "converge-log", "", "write the nodes' logs (debug level) and the benchmark's cuts, healings and convergences to this file, to see what waits")
}

// config is the benchmark's Config: Defaults (or Quick), with the flags given applied.
func (c convergeOptions) config(dir string, progress io.Writer) convergebench.Config {
	cfg := convergebench.Defaults
	if c.quick {
		cfg = convergebench.Quick
	}
	for name, apply := range map[string]func(){
		"converge-cycles":       func() { cfg.Cycles = c.cycles },
		"converge-cut":          func() { cfg.Cut = c.cut },
		"converge-gap":          func() { cfg.Gap = c.gap },
		"converge-day":          func() { cfg.Day = c.day },
		"converge-day-cut":      func() { cfg.DayCut = c.dayCut },
		"converge-day-cases":    func() { cfg.DayCases = c.dayCases },
		"converge-day-escalate": func() { cfg.DayEscalate = c.dayEscalate },
		"converge-timeout":      func() { cfg.Timeout = c.timeout },
	} {
		if c.set[name] {
			apply()
		}
	}
	cfg.Dir, cfg.Progress = dir, progress
	return cfg
}

// runConverge runs the convergence benchmark in a temporary directory under --workdir.
func runConverge(ctx context.Context, o options, rep *report) {
	logf("converge: a community silently cut from its township, healed, timed to convergence")
	rep.Converge, rep.ConvergeError = runInWorkDir(o, "converge", func(dir string) (convergebench.Result, error) {
		cfg := o.converge.config(dir, os.Stderr)
		if o.converge.log != "" {
			f, err := os.Create(o.converge.log)
			if err != nil {
				return convergebench.Result{}, err
			}
			defer f.Close()
			cfg.Logger = slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug}))
		}
		return convergebench.Run(ctx, cfg)
	}, func(r convergebench.Result) bool { return r.Cycles != nil || r.Day != nil })
}
