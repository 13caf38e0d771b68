package httpapi_test

import (
	"context"
	"sync"
	"time"

	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/replication"
)

const (
	testSite   = "cd-dgdj-ngj"
	testNumber = "cd-dgdj-ngj-20261125-000001"
	testCode   = "123456"
)

var testAt = time.Date(2026, 11, 25, 9, 30, 0, 0, time.FixedZone("CST", 8*3600))

// fakeCases is an api.CaseService that records its calls and answers with configurable errors.
type fakeCases struct {
	mu      sync.Mutex
	submits []casework.Submission
	gets    []string
	lists   []replication.Filter
	// subtreeLists are the filters ListSubtree was called with.
	subtreeLists []replication.MirrorFilter
	moves        []moveCall

	submitErr, getErr, listErr, moveErr error
	// blockSubmit makes SubmitCase wait for its context to end and return its error.
	blockSubmit bool
	cases       map[string]*casework.Case
	page        *replication.Page
}

func newFakeCases() *fakeCases { return &fakeCases{cases: map[string]*casework.Case{}} }

func (f *fakeCases) SubmitCase(ctx context.Context, sub *casework.Submission) (*casework.Case, error) {
	f.mu.Lock()
	f.submits = append(f.submits, *sub)
	err, block := f.submitErr, f.blockSubmit
	f.mu.Unlock()
	if block {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if err != nil {
		return nil, err
	}
	reqID := sub.RequestID
	if reqID == "" {
		reqID = "generated-request-id"
	}
	s := *sub
	s.RequestID = reqID
	c, err := casework.Accept(&s, casework.Acceptance{
		Number: testNumber, Site: testSite, At: testAt,
		QueryCodeHash: casework.HashQueryCode(reqID, testCode),
	})
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.cases[c.Number] = c
	f.mu.Unlock()
	out := *c
	out.QueryCode = testCode
	return &out, nil
}

func (f *fakeCases) GetCase(ctx context.Context, number string) (*casework.Case, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets = append(f.gets, number)
	if f.getErr != nil {
		return nil, f.getErr
	}
	c, ok := f.cases[number]
	if !ok {
		return nil, replication.ErrNotFound
	}
	cp := *c
	return &cp, nil
}

func (f *fakeCases) ListCases(ctx context.Context, flt replication.Filter) (*replication.Page, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lists = append(f.lists, flt)
	if f.listErr != nil {
		return nil, f.listErr
	}
	if f.page != nil {
		return f.page, nil
	}
	return &replication.Page{}, nil
}

func (f *fakeCases) calls() (submits, gets, lists int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.submits), len(f.gets), len(f.lists)
}

// moveCall is one call of MoveCase.
type moveCall struct {
	number string
	d      casework.Departure
	// deadline reports whether the call's context had one (the handler's WriteTimeout).
	deadline bool
}

// testParent is the site an escalation goes to when the request names none.
const testParent = "cd-dgdj"

// MoveCase records the call and, unless moveErr is set, departs a stored case the way the node
// would: from testSite, to d.To (testParent if empty), locked in transit.
func (f *fakeCases) MoveCase(ctx context.Context, number string, d casework.Departure) (*casework.Case, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, deadline := ctx.Deadline()
	f.moves = append(f.moves, moveCall{number: number, d: d, deadline: deadline})
	if f.moveErr != nil {
		return nil, f.moveErr
	}
	c := storedCase(number, "630102199001011234")
	d.Site, d.At = testSite, testAt.Add(time.Hour)
	if d.To == "" {
		d.To = testParent
	}
	if _, err := c.Depart(d); err != nil {
		return nil, err
	}
	return c, nil
}

func (f *fakeCases) moveCalls() []moveCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]moveCall(nil), f.moves...)
}

// fakeNode is an httpapi.NodeInfo.
type fakeNode struct {
	ready  bool
	why    string
	leaves int

	retires   []retireCall
	retireErr error
}

// retireCall is one call of SetRetired.
type retireCall struct {
	retired  bool
	reason   string
	deadline bool
}

func (n *fakeNode) SetRetired(ctx context.Context, retired bool, reason string) error {
	_, deadline := ctx.Deadline()
	n.retires = append(n.retires, retireCall{retired: retired, reason: reason, deadline: deadline})
	return n.retireErr
}

func (n *fakeNode) LeaveAsync() { n.leaves++ }

func (n *fakeNode) Ready() (bool, string) { return n.ready, n.why }
func (n *fakeNode) Members() any {
	return []map[string]string{{"name": "n1", "site": testSite}}
}
func (n *fakeNode) Sites() any { return map[string]any{"code": testSite, "tier": "community"} }

// storedCase is an accepted case as the store keeps it (hash and salt included).
func storedCase(number, idNumber string) *casework.Case {
	c, err := casework.Accept(&casework.Submission{
		Kind: casework.KindGrievance, Title: "路灯不亮",
		Applicant: &casework.Applicant{Name: "李四", IDNumber: idNumber, Phone: "0971-8123456"},
		RequestID: "req-" + number,
	}, casework.Acceptance{Number: number, Site: testSite, At: testAt, QueryCodeHash: casework.HashQueryCode("req-"+number, testCode)})
	if err != nil {
		panic(err)
	}
	return c
}

// ListSubtree records the filter and answers every case of f.page as mirrored a second after
// its last change.
func (f *fakeCases) ListSubtree(ctx context.Context, flt replication.MirrorFilter) (*replication.MirrorPage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.subtreeLists = append(f.subtreeLists, flt)
	out := &replication.MirrorPage{}
	if f.page != nil {
		for _, c := range f.page.Cases {
			out.Records = append(out.Records, &replication.MirrorRecord{Case: c, Origin: c.HolderSite, At: c.UpdatedAt, MirroredAt: c.UpdatedAt.Add(time.Second), Via: "child"})
		}
		out.NextPageToken = f.page.NextPageToken
	}
	return out, nil
}
