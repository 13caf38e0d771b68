package benchkit

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestRunPhases(t *testing.T) {
	var ran []string
	phase := func(name string, selected bool, err error) Phase {
		return Phase{Name: name, Selected: selected, Run: func(context.Context) error {
			ran = append(ran, name)
			return err
		}}
	}
	boom := errors.New("boom")
	var progress strings.Builder
	err := RunPhases(context.Background(), &progress, "feeds",
		phase("first", true, boom), phase("skipped", false, nil), phase("last", true, nil))
	if strings.Join(ran, ",") != "first,last" {
		t.Fatalf("ran %v, want the selected phases in order, the failed one not stopping the next", ran)
	}
	if !errors.Is(err, boom) || !strings.HasSuffix(progress.String(), " feeds: first: boom\n") {
		t.Fatalf("returned %v, wrote %q", err, progress.String())
	}

	ctx, cancel := context.WithCancel(context.Background())
	ran = nil
	err = RunPhases(ctx, nil, "x", Phase{Name: "cancels", Selected: true, Run: func(context.Context) error {
		ran = append(ran, "cancels")
		cancel()
		return nil
	}}, phase("after", true, nil))
	if strings.Join(ran, ",") != "cancels" || !errors.Is(err, context.Canceled) {
		t.Fatalf("after the context ended: ran %v, returned %v", ran, err)
	}
}

func TestNewPhase(t *testing.T) {
	boom := errors.New("boom")
	var got *int
	p := NewPhase("p", true, &got, func(context.Context) (*int, error) {
		n := 3
		return &n, boom
	})
	if err := p.Run(context.Background()); !errors.Is(err, boom) || got == nil || *got != 3 || p.Name != "p" || !p.Selected {
		t.Fatalf("NewPhase: %+v ran to %v, %v; want the result stored with the error", p, got, err)
	}
}

func TestMeasure(t *testing.T) {
	dir := t.TempDir()
	got, err := Measure(dir, func(t *T) (int, error) { return 7, nil })
	if got != 7 || err != nil {
		t.Fatalf("Measure = %d, %v", got, err)
	}
	got, err = Measure(dir, func(t *T) (int, error) {
		t.Fatalf("stop")
		return 7, nil
	})
	if got != 0 || err == nil || err.Error() != "stop" {
		t.Fatalf("after Fatalf: %d, %v", got, err)
	}
}
