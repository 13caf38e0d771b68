package sample

import (
	"testing"

	"github.com/govgrid/govgrid/catalog"
	"github.com/govgrid/govgrid/tier"
)

// TestSampleIsValidAndVaried: the sample catalogue passes every rule and has what the demo
// shows: 17 departments, 89 items, each mode, and items decided at each tier.
func TestSampleIsValidAndVaried(t *testing.T) {
	f, err := File()
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Departments) != 17 || len(f.Items) != 89 {
		t.Fatalf("%d departments and %d items, want 17 and 89", len(f.Departments), len(f.Items))
	}
	modes, deciders, withFees := map[catalog.Mode]int{}, map[tier.Tier]int{}, 0
	for _, it := range f.Items {
		modes[it.Mode]++
		deciders[it.DecideTier]++
		if it.TotalFen() > 0 {
			withFees++
		}
		if it.NameEN == "" {
			t.Errorf("%s has no English name", it.Code)
		}
	}
	for _, m := range catalog.Modes {
		if modes[m] == 0 {
			t.Errorf("no %s item", m)
		}
	}
	for _, d := range []tier.Tier{tier.District, tier.Township, tier.Community} {
		if deciders[d] == 0 {
			t.Errorf("no item decided at the %s", d)
		}
	}
	if withFees == 0 {
		t.Error("no item with a fee")
	}
}
