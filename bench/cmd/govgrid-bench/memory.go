package main

import (
	"context"
	"time"

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

// memoryResult is govgrid's footprint, idle and after a bulk load. Settled is false when the RSS
// was still moving by more than 1% at settleMax.
type memoryResult struct {
	Error       string         `json:"error,omitempty"`
	IdleRSS     int64          `json:"idle_rss_bytes"`
	IdleSettled bool           `json:"idle_settled"`
	Cases       int            `json:"cases"`
	Load        loadgen.Result `json:"load"`
	LoadedRSS   int64          `json:"loaded_rss_bytes"`
	LoadSettled bool           `json:"loaded_settled"`
}

// measureMemory starts a 1-node govgrid site, reads its settled RSS, loads o.memoryCases cases
// with memoryConcurrency clients and reads the settled RSS again.
func measureMemory(ctx context.Context, o options) *memoryResult {
	m := &memoryResult{Cases: o.memoryCases}
	logf("memory: starting a 1-node govgrid site")
	tg, err := systems.StartGovgrid(ctx, systems.GovgridConfig{Common: o.common(), Binary: o.govgrid, Nodes: 1})
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
	if m.IdleRSS, m.IdleSettled, err = systems.SettledRSS(ctx, pid, settleInterval, settleMax); err != nil {
		m.Error = err.Error()
		return m
	}
	logf("memory: idle RSS %s; loading %d cases with %d clients", mib(m.IdleRSS), o.memoryCases, memoryConcurrency)
	m.Load = loadgen.RunCount(ctx, memoryConcurrency, o.memoryCases, tg.Op)
	logf("memory: loaded in %v (%.0f cases/s, %d errors)", m.Load.Elapsed.Round(time.Millisecond), m.Load.OpsPerSec, m.Load.Errors)
	if m.LoadedRSS, m.LoadSettled, err = systems.SettledRSS(ctx, pid, settleInterval, settleMax); err != nil {
		m.Error = err.Error()
	}
	return m
}
