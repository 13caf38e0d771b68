// Package systems starts the systems that govgrid is benchmarked against — etcd, PostgreSQL and
// govgrid itself — as real local processes on 127.0.0.1, waits until they serve, and hands back a
// client operation that writes about 1 KiB per call.
//
// Every starter returns a *Target; its Close method stops the processes and removes their data.
// Ports are chosen by the kernel (listen on :0, then close), data lives in a fresh temporary
// directory, and readiness is detected by polling with a deadline, never by a fixed sleep.
package systems
