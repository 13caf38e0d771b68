// Package benchtest holds what the benchmarks' tests share: running a benchmark for a test,
// checking its printed report, and checking that a config's Validate refuses bad sizes.
package benchtest

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

// Run runs a benchmark for a test, unless the test is short (it starts in-process grids):
// run gets a context that ends after timeout and a writer for its progress lines, which are
// logged when it returns. An error fails the test at once; Run returns run's result.
func Run[R any](t *testing.T, timeout time.Duration, run func(ctx context.Context, progress io.Writer) (R, error)) R {
	t.Helper()
	if testing.Short() {
		t.Skip("starts grids of in-process nodes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var progress bytes.Buffer
	res, err := run(ctx, &progress)
	t.Log("\n" + progress.String())
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// Contains reports, as errors of t, every string of wants that got lacks; what names got in
// the message ("report", "JSON"), which shows got whole.
func Contains(t testing.TB, what, got string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(got, want) {
			t.Errorf("%s lacks %q:\n%s", what, want, got)
		}
	}
}

// Printed writes res with print (a benchmark's Print), reports every string of wants that the
// report lacks (Contains), logs the report and returns it.
func Printed[R any](t testing.TB, print func(io.Writer, R), res R, wants ...string) string {
	t.Helper()
	var out bytes.Buffer
	print(&out, res)
	Contains(t, "report", out.String(), wants...)
	t.Log("\n" + out.String())
	return out.String()
}

// Rejects checks that validate accepts good, and refuses good changed by each of bad (named
// by its key).
func Rejects[C any](t testing.TB, good C, validate func(C) error, bad map[string]func(*C)) {
	t.Helper()
	if err := validate(good); err != nil {
		t.Fatalf("a good config refused: %v", err)
	}
	for name, change := range bad {
		c := good
		change(&c)
		if err := validate(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
