// Package apitest holds what the tests of govgrid's front ends (httpapi, grpcapi) share: a fake
// api.CaseService that records its calls and answers the way a node would, and the site, case
// number and time it answers with. It is imported by tests only.
package apitest

import (
	"context"
	"sync"
	"time"

	"github.com/govgrid/govgrid/api"
	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/sitestate"
)

const (
	// Site is the site the fake serves: it accepts cases there and moves them from there.
	Site = "cd-dgdj-ngj"
	// Parent is Site's parent: where a move that names no target goes.
	Parent = "cd-dgdj"
	// Number is the number SubmitCase gives every case it accepts.
	Number = "cd-dgdj-ngj-20261125-000001"
	// QueryCode is the query code SubmitCase hands out (once, in its answer).
	QueryCode = "123456"
	// IDNumber is the applicant's identity number in the cases MoveCase departs.
	IDNumber = "630102199001011234"
)

// At is when the fake accepts cases; a move departs an hour later. It has nanoseconds, so a
// front end that rounds times shows.
var At = time.Date(2026, 11, 25, 9, 30, 0, 123, time.FixedZone("CST", 8*3600))

// StoredCase is an accepted grievance numbered number, held at Site, as the store keeps it (its
// query code's hash and its request id included), whose applicant has the identity number
// idNumber.
func StoredCase(number, idNumber string) *casework.Case {
	c, err := casework.Accept(&casework.Submission{
		Kind: casework.KindGrievance, Title: "路灯不亮",
		Applicant: &casework.Applicant{Name: "李四", IDNumber: idNumber, Phone: "0971-8123456"},
		RequestID: "req-" + number,
	}, casework.Acceptance{Number: number, Site: Site, At: At, QueryCodeHash: casework.HashQueryCode("req-"+number, QueryCode)})
	if err != nil {
		panic(err)
	}
	return c
}

// MoveCall is one call of MoveCase.
type MoveCall struct {
	Number    string
	Departure casework.Departure
	// Deadline reports whether the call's context had a deadline (a front end's write timeout).
	Deadline bool
}

// Calls is what a Cases was asked, in order.
type Calls struct {
	// Submits are copies of the submissions SubmitCase got.
	Submits []casework.Submission
	// Gets are the numbers GetCase got.
	Gets []string
	// Lists are the filters ListCases got; Subtrees those ListSubtree got.
	Lists    []sitestate.Filter
	Subtrees []sitestate.SubtreeFilter
	Moves    []MoveCall
	Steps    []StepCall
}

// Len is the number of calls of every method together.
func (c Calls) Len() int {
	return len(c.Submits) + len(c.Gets) + len(c.Lists) + len(c.Subtrees) + len(c.Moves)
}

// Cases is a fake api.CaseService. It records every call, and answers with the error set for
// its method or else the way the node would, from the cases Put in it and from Page. Set its
// fields before the calls they affect; it is safe for concurrent calls.
type Cases struct {
	// SubmitErr, GetErr, ListErr, SubtreeErr and MoveErr, when set, are what SubmitCase,
	// GetCase, ListCases, ListSubtree and MoveCase answer (after recording the call).
	SubmitErr, GetErr, ListErr, SubtreeErr, MoveErr error
	// BlockSubmit makes SubmitCase wait for its context to end and answer its error.
	BlockSubmit bool
	// Page is what ListCases answers (an empty page when nil); ListSubtree answers its cases
	// as mirrored.
	Page *sitestate.Page

	mu    sync.Mutex
	cases map[string]*casework.Case
	calls Calls
}

var _ api.CaseService = (*Cases)(nil)

// NewCases returns a Cases that holds no case.
func NewCases() *Cases { return &Cases{cases: map[string]*casework.Case{}} }

// Put stores c: GetCase answers a copy of it.
func (f *Cases) Put(c *casework.Case) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cases[c.Number] = c
}

// Calls returns the calls so far.
func (f *Cases) Calls() Calls {
	f.mu.Lock()
	defer f.mu.Unlock()
	return Calls{
		Submits:  append([]casework.Submission(nil), f.calls.Submits...),
		Gets:     append([]string(nil), f.calls.Gets...),
		Lists:    append([]sitestate.Filter(nil), f.calls.Lists...),
		Subtrees: append([]sitestate.SubtreeFilter(nil), f.calls.Subtrees...),
		Moves:    append([]MoveCall(nil), f.calls.Moves...),
	}
}

// SubmitCase records a copy of sub and accepts it at Site as Number, at At, with QueryCode
// (and a request id of its own when sub has none, as the node does); it stores the case and
// answers it with its query code.
func (f *Cases) SubmitCase(ctx context.Context, sub *casework.Submission) (*casework.Case, error) {
	f.mu.Lock()
	f.calls.Submits = append(f.calls.Submits, *sub)
	err, block := f.SubmitErr, f.BlockSubmit
	f.mu.Unlock()
	if block {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if err != nil {
		return nil, err
	}
	s := *sub
	if s.RequestID == "" {
		s.RequestID = "generated-request-id"
	}
	c, err := casework.Accept(&s, casework.Acceptance{
		Number: Number, Site: Site, At: At,
		QueryCodeHash: casework.HashQueryCode(s.RequestID, QueryCode),
	})
	if err != nil {
		return nil, err
	}
	f.Put(c)
	out := *c
	out.QueryCode = QueryCode
	return &out, nil
}

// GetCase records the call and answers a copy of the case Put under number, or
// sitestate.ErrNotFound.
func (f *Cases) GetCase(ctx context.Context, number string) (*casework.Case, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls.Gets = append(f.calls.Gets, number)
	if f.GetErr != nil {
		return nil, f.GetErr
	}
	c, ok := f.cases[number]
	if !ok {
		return nil, sitestate.ErrNotFound
	}
	cp := *c
	return &cp, nil
}

// CitizenView answers the view of a stored case whose query code's hash matches code.
func (f *Cases) CitizenView(ctx context.Context, number, code, client string) (*casework.CitizenView, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.cases[number]
	if !ok || c.QueryCodeHash == "" || !c.CheckQueryCode(nil, code) {
		return nil, sitestate.ErrNotFound
	}
	v := c.CitizenView()
	return &v, nil
}

// ListCases records the filter and answers Page.
func (f *Cases) ListCases(ctx context.Context, flt sitestate.Filter) (*sitestate.Page, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls.Lists = append(f.calls.Lists, flt)
	if f.ListErr != nil {
		return nil, f.ListErr
	}
	if f.Page != nil {
		return f.Page, nil
	}
	return &sitestate.Page{}, nil
}

// ListSubtree records the filter and answers every case of Page (and its page token) as
// mirrored from its holder, through a child, a second after its last change.
func (f *Cases) ListSubtree(ctx context.Context, flt sitestate.SubtreeFilter) (*sitestate.SubtreePage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls.Subtrees = append(f.calls.Subtrees, flt)
	if f.SubtreeErr != nil {
		return nil, f.SubtreeErr
	}
	out := &sitestate.SubtreePage{}
	if f.Page != nil {
		for _, c := range f.Page.Cases {
			out.Records = append(out.Records, &sitestate.MirrorRecord{
				Case: c, Origin: c.HolderSite, At: c.UpdatedAt, MirroredAt: c.UpdatedAt.Add(time.Second), Via: "child",
			})
		}
		out.NextPageToken = f.Page.NextPageToken
	}
	return out, nil
}

// MoveCase records the call and departs a StoredCase numbered number the way the node would:
// from Site, an hour after At, to d.To (Parent when empty), locked in transit.
func (f *Cases) MoveCase(ctx context.Context, number string, d casework.Departure) (*casework.Case, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, deadline := ctx.Deadline()
	f.calls.Moves = append(f.calls.Moves, MoveCall{Number: number, Departure: d, Deadline: deadline})
	if f.MoveErr != nil {
		return nil, f.MoveErr
	}
	c := StoredCase(number, IDNumber)
	d.Site, d.At = Site, At.Add(time.Hour)
	if d.To == "" {
		d.To = Parent
	}
	if _, err := c.Depart(d); err != nil {
		return nil, err
	}
	return c, nil
}

// TakeStep takes step r of a StoredCase numbered number the way the node would (at Site, an hour
// after At, with no item rules) and records the call.
func (f *Cases) TakeStep(ctx context.Context, number string, r casework.StepRequest) (*casework.Case, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls.Steps = append(f.calls.Steps, StepCall{Number: number, Request: r})
	c := StoredCase(number, IDNumber)
	r.Site, r.At = Site, At.Add(time.Hour)
	if r.Actor == "" {
		r.Actor = "apitest"
	}
	if err := c.Take(r, casework.ItemRules{}); err != nil {
		return nil, err
	}
	return c, nil
}

// StepsFor answers the steps the state machine allows a StoredCase at Site (no roles applied).
func (f *Cases) StepsFor(ctx context.Context, number string) (*api.StepsAnswer, error) {
	c := StoredCase(number, IDNumber)
	return &api.StepsAnswer{Number: c.Number, Status: c.Status, HolderSite: c.HolderSite, Steps: c.StepsAt(casework.ItemRules{}, c.HolderSite, "", "")}, nil
}

// StepCall is one call of TakeStep.
type StepCall struct {
	Number  string
	Request casework.StepRequest
}
