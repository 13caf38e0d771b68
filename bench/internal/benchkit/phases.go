package benchkit

import (
	"context"
	"errors"
	"io"
)

// Phase is one part of a benchmark that runs on nodes of its own (mirrorbench's visibility and
// mirror, convergebench's cycles and day).
type Phase struct {
	// Name names the phase in progress lines.
	Name string
	// Selected is whether the phase is to run.
	Selected bool
	// Run measures the phase and records its result; on an error it records what it measured
	// before the error.
	Run func(ctx context.Context) error
}

// NewPhase is a selected phase that stores run's result in *result, also on an error.
func NewPhase[R any](name string, selected bool, result *R, run func(ctx context.Context) (R, error)) Phase {
	return Phase{Name: name, Selected: selected, Run: func(ctx context.Context) (err error) {
		*result, err = run(ctx)
		return err
	}}
}

// RunPhases runs the selected phases in order while ctx lasts. A phase that fails does not stop
// the next: its error is written to progress as "label: name: error", and RunPhases returns
// every phase's error, and ctx's, joined.
func RunPhases(ctx context.Context, progress io.Writer, label string, phases ...Phase) error {
	var errs []error
	for _, p := range phases {
		if !p.Selected || ctx.Err() != nil {
			continue
		}
		if err := p.Run(ctx); err != nil {
			Progress(progress, "%s: %s: %v", label, p.Name, err)
			errs = append(errs, err)
		}
	}
	if err := ctx.Err(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Measure runs f with a T from WithT (its directories under dir, its log discarded) and returns
// f's result and error; when f fails with Fatalf, the zero result and the failure.
func Measure[R any](dir string, f func(t *T) (R, error)) (R, error) {
	var res R
	err := WithT(dir, nil, func(t *T) error {
		var err error
		res, err = f(t)
		return err
	})
	return res, err
}
