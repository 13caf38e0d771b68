package chaos

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/govgrid/govgrid/casework"
)

// The checkers must be able to fail: these tests feed them hand-made histories.

func op(client int, call, ret int64, in opInput, out opOutput) porcupine.Operation {
	if in.Key == "" {
		in.Key = "rid"
	}
	return porcupine.Operation{ClientId: client, Call: call, Return: ret, Input: in, Output: out}
}

func TestModelJudgesHistories(t *testing.T) {
	sub := func(client int, call, ret int64, number string) porcupine.Operation {
		return op(client, call, ret, opInput{Kind: opSubmit, RID: "rid"}, opOutput{Number: number})
	}
	get := func(client int, call, ret int64, found bool) porcupine.Operation {
		return op(client, call, ret, opInput{Kind: opGet, Number: "n1"}, opOutput{Found: found, Version: 1})
	}
	move := func(client int, call, ret int64, v uint64, refused bool) porcupine.Operation {
		return op(client, call, ret, opInput{Kind: opMove, Number: "n1", Verb: "escalate"}, opOutput{Version: v, Refused: refused})
	}
	for _, tc := range []struct {
		name  string
		ops   []porcupine.Operation
		legal bool
	}{
		{"a retry answered with the same number", []porcupine.Operation{sub(0, 0, 10, "n1"), sub(0, 20, 30, "n1")}, true},
		{"a retry answered with another number", []porcupine.Operation{sub(0, 0, 10, "n1"), sub(0, 20, 30, "n2")}, false},
		{"a read concurrent with the submission may miss it", []porcupine.Operation{sub(0, 0, 10, "n1"), get(1, 5, 6, false)}, true},
		{"a read after the acknowledgement misses it", []porcupine.Operation{sub(0, 0, 10, "n1"), get(1, 11, 12, false)}, false},
		{"a read finds a case whose creating answer was lost", []porcupine.Operation{get(1, 0, 1, true), sub(0, 5, 10, "n1")}, true},
		{"moves raise the version", []porcupine.Operation{sub(0, 0, 1, "n1"), move(0, 2, 3, 2, false), move(1, 4, 5, 4, false)}, true},
		{"a move after another returns an older version", []porcupine.Operation{sub(0, 0, 1, "n1"), move(0, 2, 3, 4, false), move(1, 4, 5, 3, false)}, false},
		{"two concurrent moves both committed at one version", []porcupine.Operation{sub(0, 0, 1, "n1"), move(0, 2, 5, 2, false), move(1, 3, 6, 2, false)}, false},
		{"a refused move changes nothing", []porcupine.Operation{sub(0, 0, 1, "n1"), move(0, 2, 3, 2, false), move(1, 4, 5, 0, true)}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := porcupine.CheckOperations(caseModel, tc.ops); got != tc.legal {
				t.Fatalf("linearizable = %v, want %v", got, tc.legal)
			}
		})
	}
}

func TestIllegalHistoryIsVisualized(t *testing.T) {
	ops := []porcupine.Operation{
		op(0, 0, 10, opInput{Kind: opSubmit, RID: "r1"}, opOutput{Number: "n1"}),
		op(1, 11, 12, opInput{Kind: opGet, Number: "n1"}, opOutput{}),
		op(0, 0, 10, opInput{Kind: opSubmit, RID: "r2", Key: "r2"}, opOutput{Number: "n2"}),
	}
	dir := t.TempDir()
	res, err := checkLinearizable("cd", ops, 10*time.Second, func() string { return dir })
	if res != porcupine.Illegal || err == nil {
		t.Fatalf("result %v, error %v", res, err)
	}
	if !strings.Contains(err.Error(), "get(n1) -> not found") || strings.Contains(err.Error(), "r2") {
		t.Fatalf("the error does not name just the illegal case's operations: %v", err)
	}
	html := filepath.Join(dir, "linearizability-cd.html")
	if fi, serr := os.Stat(html); serr != nil || fi.Size() == 0 || !strings.Contains(err.Error(), html) {
		t.Fatalf("visualization %s not written or not named (%v): %v", html, serr, err)
	}
}

func TestHopsFollowTheHistory(t *testing.T) {
	ev := func(typ casework.EventType, site, from, to string) casework.Event {
		return casework.Event{Type: typ, Site: site, FromSite: from, ToSite: to}
	}
	submitted := ev(casework.EventSubmitted, "c", "", "")
	up := ev(casework.EventEscalated, "c", "c", "t")
	in := ev(casework.EventReceived, "t", "c", "t")
	down := ev(casework.EventHandedDown, "t", "t", "c")
	back := ev(casework.EventReceived, "c", "t", "c")
	refused := ev(casework.EventHandoffRefused, "c", "c", "t")
	for _, tc := range []struct {
		name    string
		history []casework.Event
		holder  string
		want    map[string]string
		err     string
	}{
		{"kept where accepted", []casework.Event{submitted}, "c", map[string]string{}, ""},
		{"up and down again", []casework.Event{submitted, up, in, down, back}, "c", map[string]string{"c": "t", "t": "c"}, ""},
		{"refused, then up", []casework.Event{submitted, up, refused, up, in}, "t", map[string]string{"c": "t"}, ""},
		{"an arrival applied twice", []casework.Event{submitted, up, in, in}, "t", nil, "applied twice"},
		{"a move without its arrival", []casework.Event{submitted, up, down}, "t", nil, "not by its arrival"},
		{"held elsewhere than the history says", []casework.Event{submitted, up, in}, "c", nil, "ends at t"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := hops(&casework.Case{History: tc.history, HolderSite: tc.holder})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("left %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Fatalf("left %v, want %v", got, tc.want)
				}
			}
		})
	}
}
