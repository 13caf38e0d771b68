package chaos

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// opKind is what a client operation did.
type opKind uint8

const (
	opSubmit opKind = iota + 1
	opGet
	opMove
)

func (k opKind) String() string {
	switch k {
	case opSubmit:
		return "submit"
	case opGet:
		return "get"
	case opMove:
		return "move"
	}
	return "?"
}

// opInput is what a client asked, and of which node.
type opInput struct {
	Kind opKind
	// Key is the case the operation is about: its request id (filled in for gets and moves,
	// which name a number, when the history is checked).
	Key    string
	RID    string // submit
	Number string // get, move
	Verb   string // move
	Node   string
}

// opOutput is the answer. Only operations with a definite answer are kept in the history.
type opOutput struct {
	Number  string // submit: the number answered
	Found   bool   // get: 200 (else 404)
	Refused bool   // move: 4xx, nothing changed
	Version uint64 // move: the version the committed move returned; get: the version shown
	Holder  string // get: the holder shown
	Status  int
}

// caseState is one case as the model sees it: its number ("" before it exists) and the highest
// version a committed move returned. It is comparable, so porcupine's default equality works.
type caseState struct {
	Number  string
	Version uint64
}

// stepCase is the sequential specification of one case (see the package doc).
func stepCase(state, input, output any) (bool, any) {
	s, in, out := state.(caseState), input.(opInput), output.(opOutput)
	switch in.Kind {
	case opSubmit:
		if s.Number == "" {
			s.Number = out.Number
			return true, s
		}
		return s.Number == out.Number, s
	case opGet:
		if !out.Found {
			return s.Number == "", s
		}
		// Found before any submit was linearized: the creating submit's answer was never
		// seen (it is not in the history), which is allowed.
		if s.Number != "" && s.Number != in.Number {
			return false, s
		}
		s.Number = in.Number
		return true, s
	case opMove:
		if out.Refused {
			return true, s
		}
		if (s.Number != "" && s.Number != in.Number) || out.Version <= s.Version {
			return false, s
		}
		s.Number, s.Version = in.Number, out.Version
		return true, s
	}
	return false, s
}

// caseModel is the porcupine model of a site's client history: independent cases, one
// partition per case.
var caseModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			k := op.Input.(opInput).Key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		sort.Strings(keys)
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return caseState{} },
	Step: stepCase,
	DescribeOperation: func(input, output any) string {
		in, out := input.(opInput), output.(opOutput)
		switch in.Kind {
		case opSubmit:
			return fmt.Sprintf("submit(%s) -> %s", in.RID, out.Number)
		case opGet:
			if !out.Found {
				return fmt.Sprintf("get(%s) -> not found", in.Number)
			}
			return fmt.Sprintf("get(%s) -> v%d at %s", in.Number, out.Version, out.Holder)
		case opMove:
			if out.Refused {
				return fmt.Sprintf("%s(%s) -> refused %d", in.Verb, in.Number, out.Status)
			}
			return fmt.Sprintf("%s(%s) -> v%d", in.Verb, in.Number, out.Version)
		}
		return "?"
	},
	DescribeState: func(state any) string {
		s := state.(caseState)
		if s.Number == "" {
			return "no case"
		}
		return fmt.Sprintf("%s, moves up to v%d", s.Number, s.Version)
	},
	DescribeOperationMetadata: func(info any) string {
		if info == nil {
			return ""
		}
		return fmt.Sprint(info)
	},
}

// history records the operations of every client, per site of origin of the case.
type history struct {
	start time.Time

	mu  sync.Mutex
	ops []recorded // guarded by mu
}

// recorded is one operation with a definite answer, and the site whose history it belongs to.
type recorded struct {
	site string
	op   porcupine.Operation
}

func newHistory() *history { return &history{start: time.Now()} }

// now is the history's clock: nanoseconds since it started (monotonic).
func (h *history) now() int64 { return int64(time.Since(h.start)) }

// add records an operation of the case accepted at site, called at call and answered at ret.
func (h *history) add(site string, client int, call, ret int64, in opInput, out opOutput) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, recorded{site: site, op: porcupine.Operation{
		ClientId: client, Input: in, Call: call, Output: out, Return: ret, Metadata: in.Node,
	}})
}

// bySite returns each site's history, every get and move keyed by the request id that created
// the number it names (rids maps numbers to request ids).
func (h *history) bySite(rids map[string]string) map[string][]porcupine.Operation {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string][]porcupine.Operation{}
	for _, r := range h.ops {
		op := r.op
		in := op.Input.(opInput)
		if in.Kind == opSubmit {
			in.Key = in.RID
		} else if rid, ok := rids[in.Number]; ok {
			in.Key = rid
		} else {
			in.Key = "number:" + in.Number
		}
		op.Input = in
		out[r.site] = append(out[r.site], op)
	}
	return out
}

// checkLinearizable checks one site's history. On a violation it writes porcupine's HTML view
// into the directory dir returns and returns an error naming the file; a check that runs out of
// time is not a failure.
func checkLinearizable(site string, ops []porcupine.Operation, timeout time.Duration, dir func() string) (porcupine.CheckResult, error) {
	res, info := porcupine.CheckOperationsVerbose(caseModel, ops, timeout)
	if res != porcupine.Illegal {
		return res, nil
	}
	d := dir()
	path := filepath.Join(d, "linearizability-"+site+".html")
	if err := os.MkdirAll(d, 0o755); err == nil {
		if err := porcupine.VisualizePath(caseModel, info, path); err != nil {
			path = "(not written: " + err.Error() + ")"
		}
	}
	return res, fmt.Errorf("site %s: the client history is not linearizable (%d operations); the cases that are not: %s; porcupine's view: %s",
		site, len(ops), strings.Join(illegalCases(ops), "; "), path)
}

// illegalCases checks each case's operations on their own and describes those that are not
// linearizable, with their operations in call order, so the failure reads without the HTML.
func illegalCases(ops []porcupine.Operation) []string {
	var out []string
	for _, part := range caseModel.Partition(ops) {
		if porcupine.CheckOperations(caseModel, part) {
			continue
		}
		sort.Slice(part, func(i, j int) bool { return part[i].Call < part[j].Call })
		var lines []string
		for _, op := range part {
			lines = append(lines, fmt.Sprintf("[%s..%s c%d %v] %s", ms(op.Call), ms(op.Return), op.ClientId, op.Metadata,
				caseModel.DescribeOperation(op.Input, op.Output)))
		}
		out = append(out, fmt.Sprintf("%s: %s", part[0].Input.(opInput).Key, strings.Join(lines, ", ")))
		if len(out) == 5 {
			break
		}
	}
	return out
}

func ms(ns int64) string { return fmt.Sprintf("%.3fs", float64(ns)/1e9) }
