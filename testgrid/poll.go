package testgrid

import "time"

// The deadline polls every test of the module shares (the in-process grid's, and e2e's and
// deploy's against processes and containers): a test waits for a condition, never for a
// guessed time.

// Eventually polls cond every 20 ms until it returns nil, failing t with cond's last error
// when timeout passes; it returns how long that took. cond runs on the calling goroutine, so it
// may itself fail t at once (a process that exited, say).
func Eventually(t T, timeout time.Duration, cond func() error) time.Duration {
	t.Helper()
	took, err := poll(20*time.Millisecond, timeout, cond)
	if err != nil {
		t.Fatalf("condition not met after %v: %v", timeout, err)
	}
	return took
}

// Poll calls cond every 100 ms until it returns nil or timeout passes, and returns how long
// that took and cond's last error (nil once it held). Unlike Eventually it does not fail the
// test: the fault tests log the time to converge, or say what never converged, and go on; the
// tests against processes poll their HTTP APIs at this gentler pace.
func Poll(timeout time.Duration, cond func() error) (time.Duration, error) {
	return poll(100*time.Millisecond, timeout, cond)
}

// poll calls cond every interval until it returns nil or timeout passes (cond runs at least
// once), and returns how long that took and cond's last error.
func poll(interval, timeout time.Duration, cond func() error) (time.Duration, error) {
	start := time.Now()
	for {
		err := cond()
		if err == nil || time.Since(start) > timeout {
			return time.Since(start), err
		}
		time.Sleep(interval)
	}
}
