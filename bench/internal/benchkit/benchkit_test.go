package benchkit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/govgrid/govgrid/casework"
)

func TestSummarise(t *testing.T) {
	if got := Summarise(nil); got != (Dist{}) {
		t.Fatalf("empty: %+v", got)
	}
	var lat []time.Duration
	for i := 100; i >= 1; i-- {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	got := Summarise(lat)
	want := Dist{Count: 100, P50: 50 * time.Millisecond, P99: 99 * time.Millisecond, Max: 100 * time.Millisecond}
	if got != want {
		t.Fatalf("Summarise(1..100 ms) = %+v, want %+v", got, want)
	}
	if got := Summarise([]time.Duration{7}); got.P50 != 7 || got.P99 != 7 || got.Max != 7 {
		t.Fatalf("one sample: %+v", got)
	}
}

func TestFormat(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "—", 420 * time.Microsecond: "420 µs", 1234 * time.Microsecond: "1.23 ms",
		12345 * time.Microsecond: "12.3 ms", 123456 * time.Microsecond: "123 ms", 2500 * time.Millisecond: "2.50 s"} {
		if got := FmtDur(d); got != want {
			t.Errorf("FmtDur(%v) = %q, want %q", d, got, want)
		}
	}
	for d, want := range map[time.Duration]string{0: "—", 420 * time.Microsecond: "420 µs", 1234 * time.Microsecond: "1.23 ms",
		12345 * time.Microsecond: "12.3 ms", 123456 * time.Microsecond: "123 ms", 2 * time.Second: "2000 ms"} {
		if got := FmtMillis(d); got != want {
			t.Errorf("FmtMillis(%v) = %q, want %q", d, got, want)
		}
	}
	var head strings.Builder
	TableHeader(&head)
	if head.String() != "\n| measurement | result | target | met |\n|---|---:|---:|---|\n" {
		t.Errorf("TableHeader: %q", head.String())
	}
	if got := YesNo(true) + " " + YesNo(false); got != "yes **no**" {
		t.Errorf("YesNo: %q", got)
	}
	if got := RSSParts(3<<20, 2<<20, 1<<19); got != "VmRSS 3.0 MiB (RssAnon 2.0 MiB, RssFile 0.5 MiB)" {
		t.Errorf("RSSParts: %q", got)
	}
}

func TestUntil(t *testing.T) {
	n := 0
	if err := Until(context.Background(), time.Second, time.Millisecond, func() error {
		if n++; n < 3 {
			return errors.New("not yet")
		}
		return nil
	}); err != nil || n != 3 {
		t.Fatalf("Until: %v after %d calls", err, n)
	}
	notYet := errors.New("never")
	if err := Until(context.Background(), 5*time.Millisecond, time.Millisecond, func() error { return notYet }); !errors.Is(err, notYet) {
		t.Fatalf("Until after its timeout: %v", err)
	}
}

func TestPollApplied(t *testing.T) {
	// The applied index of each tick; woken is set at tick 3, stop closed at the last tick.
	index := []uint64{0, 0, 1, 1, 2, 2}
	stop := make(chan struct{})
	var woken atomic.Bool
	tick := -1
	applied := func() uint64 {
		tick++
		switch tick {
		case 3:
			woken.Store(true)
		case len(index) - 1:
			close(stop)
		}
		return index[min(tick, len(index)-1)]
	}
	var scans []int
	PollApplied(stop, time.Millisecond, applied, &woken, func() { scans = append(scans, tick) })
	if want := []int{2, 3, 4}; !slices.Equal(scans, want) {
		t.Fatalf("scanned at ticks %v, want %v (the index moved, woken, the index moved)", scans, want)
	}
	if woken.Load() {
		t.Fatal("woken was not cleared by the scan it caused")
	}
}

func TestBackground(t *testing.T) {
	var stopped atomic.Bool
	stop := Background(func(stop <-chan struct{}) {
		<-stop
		stopped.Store(true)
	})
	stop()
	if !stopped.Load() {
		t.Fatal("stop returned before f did")
	}
}

func TestSleepUntil(t *testing.T) {
	if err := SleepUntil(context.Background(), time.Now().Add(-time.Second)); err != nil {
		t.Fatalf("a time past: %v", err)
	}
	start := time.Now()
	if err := SleepUntil(context.Background(), start.Add(20*time.Millisecond)); err != nil || time.Since(start) < 20*time.Millisecond {
		t.Fatalf("returned %v after %v, want nil after 20ms", err, time.Since(start))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := SleepUntil(ctx, time.Now().Add(time.Hour)); !errors.Is(err, context.Canceled) {
		t.Fatalf("an ended context: %v", err)
	}
}

func TestHeldBy(t *testing.T) {
	c := &casework.Case{HolderSite: "cd"}
	if !HeldBy(c, "cd") || HeldBy(c, "cd-dgdj") || HeldBy(nil, "cd") {
		t.Fatal("HeldBy misreads the holder")
	}
	c.Transit = &casework.Transit{}
	if HeldBy(c, "cd") {
		t.Fatal("a case in transit counts as held")
	}
}

func TestWithT(t *testing.T) {
	dir := t.TempDir()
	var order []string
	var log strings.Builder
	err := WithT(dir, &log, func(bt *T) error {
		bt.Cleanup(func() { order = append(order, "first") })
		bt.Cleanup(func() { order = append(order, "second") })
		d := bt.TempDir()
		if !strings.HasPrefix(d, dir) {
			return fmt.Errorf("TempDir %s is not under %s", d, dir)
		}
		if st, err := os.Stat(d); err != nil || !st.IsDir() {
			return fmt.Errorf("TempDir %s: %v", d, err)
		}
		bt.Logf("hello %d", 1)
		bt.Fatalf("stop at %d", 7)
		order = append(order, "after Fatalf")
		return nil
	})
	if err == nil || err.Error() != "stop at 7" {
		t.Fatalf("WithT returned %v, want the Fatalf's message", err)
	}
	if strings.Join(order, ",") != "second,first" {
		t.Fatalf("cleanups ran %v, want the last registered first and nothing after Fatalf", order)
	}
	if log.String() != "hello 1\n" {
		t.Fatalf("log %q", log.String())
	}
	want := errors.New("plain")
	if err := WithT(dir, nil, func(*T) error { return want }); err != want {
		t.Fatalf("WithT returned %v, want f's error", err)
	}
	if err := WithT(dir, nil, func(*T) error { runtime.Goexit(); return nil }); !errors.Is(err, errGoexit) {
		t.Fatalf("WithT after a bare Goexit returned %v", err)
	}
}
