package benchtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

// recorder is a testing.TB that records what a helper reports instead of failing the test.
type recorder struct {
	testing.TB
	errors []string
	fatal  string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}
func (r *recorder) Fatalf(format string, args ...any) { r.fatal = fmt.Sprintf(format, args...) }
func (r *recorder) Log(...any)                        {}

func TestContains(t *testing.T) {
	r := &recorder{TB: t}
	Contains(r, "report", "| a | b |", "| a |", "| c |", "b |")
	if len(r.errors) != 1 || !strings.HasPrefix(r.errors[0], `report lacks "| c |":`) {
		t.Fatalf("reported %q, want the one missing string", r.errors)
	}
}

func TestPrinted(t *testing.T) {
	r := &recorder{TB: t}
	got := Printed(r, func(w io.Writer, n int) { fmt.Fprintf(w, "| n | %d |\n", n) }, 4, "| n | 4 |", "| n | 5 |")
	if got != "| n | 4 |\n" || len(r.errors) != 1 || !strings.HasPrefix(r.errors[0], `report lacks "| n | 5 |":`) {
		t.Fatalf("Printed returned %q and reported %q", got, r.errors)
	}
}

func TestRejects(t *testing.T) {
	type config struct{ n int }
	validate := func(c config) error {
		if c.n < 1 {
			return errors.New("n must be at least 1")
		}
		return nil
	}
	r := &recorder{TB: t}
	Rejects(r, config{n: 3}, validate, map[string]func(*config){
		"zero":    func(c *config) { c.n = 0 },
		"still 2": func(c *config) { c.n = 2 },
	})
	if r.fatal != "" || len(r.errors) != 1 || r.errors[0] != "still 2: accepted" {
		t.Fatalf("reported %q, fatal %q; want only the change that was accepted", r.errors, r.fatal)
	}
	r = &recorder{TB: t}
	Rejects(r, config{}, validate, nil)
	if r.fatal == "" {
		t.Fatal("a refused good config went unreported")
	}
}

func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("Run skips in short mode itself")
	}
	got := Run(t, time.Minute, func(ctx context.Context, progress io.Writer) (int, error) {
		if _, ok := ctx.Deadline(); !ok {
			return 0, errors.New("no deadline")
		}
		fmt.Fprintln(progress, "a progress line")
		return 7, nil
	})
	if got != 7 {
		t.Fatalf("Run returned %d", got)
	}
}
