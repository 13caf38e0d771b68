package main

import (
	"context"
	"time"

	"github.com/govgrid/govgrid/bench/internal/benchkit"
	"github.com/govgrid/govgrid/bench/loadgen"
	"github.com/govgrid/govgrid/bench/systems"
)

// memoryConcurrency is the number of clients loading cases for the memory measurement.
const memoryConcurrency = 64

// Settling: RSS is read every settleInterval until three readings agree within 1%, at most
// settleMax.
const (
	settleInterval = time.Second
	settleMax      = 15 * time.Second
)

// memoryResult is govgrid's footprint, idle and after a bulk load. Settled is false when VmRSS
// was still moving by more than 1% at settleMax. RSS is VmRSS; Anon and File are its RssAnon and
// RssFile parts.
type memoryResult struct {
	Error         string         `json:"error,omitempty"`
	IdleRSS       int64          `json:"idle_rss_bytes"`
	IdleRSSAnon   int64          `json:"idle_rss_anon_bytes"`
	IdleRSSFile   int64          `json:"idle_rss_file_bytes"`
	IdleSettled   bool           `json:"idle_settled"`
	Cases         int            `json:"cases"`
	Load          loadgen.Result `json:"load"`
	LoadedRSS     int64          `json:"loaded_rss_bytes"`
	LoadedRSSAnon int64          `json:"loaded_rss_anon_bytes"`
	LoadedRSSFile int64          `json:"loaded_rss_file_bytes"`
	LoadSettled   bool           `json:"loaded_settled"`
	DataDisk      int64          `json:"loaded_data_dir_disk_bytes"`
	DataApparent  int64          `json:"loaded_data_dir_apparent_bytes"`
}

// measureMemory starts a 1-node govgrid site, reads its settled memory once it serves, loads
// o.memoryCases cases with memoryConcurrency clients (signed in), reads the settled memory again
// and sizes the data directory.
func measureMemory(ctx context.Context, o options) *memoryResult {
	m := &memoryResult{Cases: o.memoryCases}
	logf("memory: starting a 1-node govgrid site")
	// The idle node is read as soon as it serves, before the benchmark's account is made and
	// signed in (GovgridConfig.Started): the password hashes of that (argon2id) would show as
	// idle memory for a while after.
	readIdle := func(t *systems.Target) error {
		idle, settled, err := systems.SettledMem(ctx, t.PIDs[0], settleInterval, settleMax)
		m.IdleRSS, m.IdleRSSAnon, m.IdleRSSFile, m.IdleSettled = idle.RSS, idle.Anon, idle.File, settled
		return err
	}
	tg, err := systems.StartGovgrid(ctx, systems.GovgridConfig{Common: o.common(), Binary: o.govgrid, Nodes: 1, Started: readIdle})
	if err != nil {
		m.Error = err.Error()
		logf("memory: %v", err)
		return m
	}
	defer func() {
		if err := tg.Close(); err != nil {
			logf("memory: stop: %v", err)
		}
	}()
	pid := tg.PIDs[0]
	logf("memory: idle RSS %s; loading %d cases with %d clients", benchkit.MiB(m.IdleRSS), o.memoryCases, memoryConcurrency)
	m.Load = loadgen.RunCount(ctx, memoryConcurrency, o.memoryCases, tg.Op)
	logf("memory: loaded in %v (%.0f cases/s, %d errors)", m.Load.Elapsed.Round(time.Millisecond), m.Load.OpsPerSec, m.Load.Errors)
	loaded, settled, err := systems.SettledMem(ctx, pid, settleInterval, settleMax)
	if err != nil {
		m.Error = err.Error()
		return m
	}
	m.LoadedRSS, m.LoadedRSSAnon, m.LoadedRSSFile, m.LoadSettled = loaded.RSS, loaded.Anon, loaded.File, settled
	if m.DataDisk, m.DataApparent, err = systems.DirSize(tg.DataDirs[0]); err != nil {
		m.Error = "data directory size: " + err.Error()
		return m
	}
	return m
}
