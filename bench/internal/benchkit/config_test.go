package benchkit

import (
	"testing"
	"time"
)

func TestFillZero(t *testing.T) {
	type config struct {
		Size    int
		Warmup  time.Duration
		Rate    float64
		On      bool
		Dir     string
		private int
	}
	defaults := config{Size: 5, Warmup: time.Second, Rate: 2.5, On: true, Dir: "d", private: 9}
	c := config{Rate: 1}
	FillZero(&c, defaults, "Warmup", "On")
	if want := (config{Size: 5, Rate: 1, Dir: "d"}); c != want {
		t.Fatalf("FillZero gave %+v, want %+v (kept and set fields untouched, unexported ones too)", c, want)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("an unknown field to keep was accepted")
		}
	}()
	FillZero(&c, defaults, "Warmpu")
}
