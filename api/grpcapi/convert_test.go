package grpcapi_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/govgrid/govgrid/api/apitest"
	pb "github.com/govgrid/govgrid/api/govgridpb"
	"github.com/govgrid/govgrid/api/grpcapi"
	"github.com/govgrid/govgrid/casework"
	"google.golang.org/protobuf/proto"
)

// acceptedCase is a case as Accept makes it, with a history that verifies.
func acceptedCase(t *testing.T) *casework.Case {
	t.Helper()
	c, err := casework.Accept(grpcapi.SubmissionFromProto(validRequest()), casework.Acceptance{
		Number: apitest.Number, Site: apitest.Site, At: apitest.At,
		QueryCodeHash: casework.HashQueryCode("req-1", apitest.QueryCode),
	})
	if err != nil {
		t.Fatal(err)
	}
	c.QueryCode = apitest.QueryCode
	return c
}

// fullCase has every field of a case, its applicant, materials and events set to a non-zero
// value (the history hashes are made up: it is for field-by-field checks, not VerifyHistory).
func fullCase() *casework.Case {
	at := time.Date(2026, 11, 25, 9, 30, 0, 123456789, time.UTC)
	paused, paid := at.Add(30*time.Minute), at.Add(3*time.Hour)
	return &casework.Case{
		Number: apitest.Number, Kind: casework.KindApplication, ItemCode: "QT-0010", Title: "居住证办理",
		Description: "满半年", Applicant: casework.Applicant{Name: "张三", IDNumber: "63010219900101123X", Phone: "13800138000"},
		Materials: []casework.Material{
			{Name: "身份证复印件", Digest: strings.Repeat("ab", 32), Pages: 2},
			{Name: "租房合同", Digest: strings.Repeat("cd", 32), Pages: 10000},
		},
		Status: "assigned", HolderSite: "cd-dgdj", OriginSite: apitest.Site, DecideTier: "district",
		Version: 2, QueryCode: apitest.QueryCode, QueryCodeHash: strings.Repeat("e", 64), RequestID: "req-1",
		CreatedAt: at, UpdatedAt: at.Add(time.Hour),
		History: []casework.Event{
			{Seq: 1, Type: "received", At: at, Site: apitest.Site, Actor: "clerk-07", Note: "window 3",
				FromStatus: "draft", ToStatus: "submitted", FromSite: "cd-dgdj-ngj-a", ToSite: apitest.Site,
				PrevHash: strings.Repeat("0", 64), Hash: strings.Repeat("1", 64), Role: "clerk"},
			{Seq: 2, Type: "escalated", At: at.Add(time.Hour), Site: "cd-dgdj", Actor: "lead-2", Note: "to the district",
				FromStatus: "submitted", ToStatus: "assigned", FromSite: "cd-dgdj", ToSite: "cd",
				PrevHash: strings.Repeat("1", 64), Hash: strings.Repeat("2", 64), Role: "officer"},
		},
		CollectSite: "cd-dgdj-ngj", Missing: []string{"户口簿", "收入证明"}, PausedSince: &paused, PausedSeconds: 86400,
		ReviewedBy: "张审 (cd.reviewer)", Decision: casework.DecisionApproved,
		SignOffs: []casework.SignOff{{Department: "rs", Actor: "人社 (rs.officer)", At: at.Add(2 * time.Hour)}},
		Seal: &casework.Seal{Certificate: casework.Certificate{Version: 1, Grid: "cd", Number: apitest.Number, ItemCode: "QT-0010",
			ItemName: "居住证办理", Applicant: "张*", Decision: "approved", DecidedAt: at.Add(2 * time.Hour), DecidedOn: "2026-11-25", Site: "cd"},
			PublicKey: []byte(strings.Repeat("k", 32)), Signature: []byte(strings.Repeat("s", 64))},
		Bill: &casework.Bill{Lines: []casework.FeeLine{{Name: "工本费", StandardFen: 1000, ChargedFen: 800, Basis: "《收费标准》",
			Adjusted: true, Reason: "优惠", Exempt: true, ExemptReason: "低保"}}, TotalFen: 800, Paid: true, PaymentRef: "p-1", PaidAt: &paid},
		Transit: &casework.Transit{HandoffID: casework.HandoffID(apitest.Number, 2), To: "cd", Move: casework.MoveEscalate,
			Since: at.Add(time.Hour + 1)},
	}
}

// zeroFields lists the fields of v (recursively) that hold their zero value.
func zeroFields(v reflect.Value, path string) []string {
	if v.Type() == reflect.TypeFor[time.Time]() {
		if v.Interface().(time.Time).IsZero() {
			return []string{path}
		}
		return nil
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return []string{path}
		}
		return zeroFields(v.Elem(), path)
	case reflect.Struct:
		var out []string
		for i := 0; i < v.NumField(); i++ {
			out = append(out, zeroFields(v.Field(i), path+"."+v.Type().Field(i).Name)...)
		}
		return out
	case reflect.Slice:
		if v.Len() == 0 {
			return []string{path}
		}
		var out []string
		for i := 0; i < v.Len(); i++ {
			out = append(out, zeroFields(v.Index(i), path+"[]")...)
		}
		return out
	}
	if v.IsZero() {
		return []string{path}
	}
	return nil
}

// utc puts every time of c in UTC so that cases can be compared with reflect.DeepEqual
// (CaseFromProto gives times in time.Local).
func utc(c *casework.Case) *casework.Case {
	out := *c
	out.CreatedAt, out.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
	out.History = append([]casework.Event(nil), c.History...)
	for i := range out.History {
		out.History[i].At = out.History[i].At.UTC()
	}
	if c.PausedSince != nil {
		p := c.PausedSince.UTC()
		out.PausedSince = &p
	}
	if c.Seal != nil {
		se := *c.Seal
		se.Certificate.DecidedAt = se.Certificate.DecidedAt.UTC()
		out.Seal = &se
	}
	if c.Bill != nil {
		b := *c.Bill
		if b.PaidAt != nil {
			p := b.PaidAt.UTC()
			b.PaidAt = &p
		}
		out.Bill = &b
	}
	out.SignOffs = append([]casework.SignOff(nil), c.SignOffs...)
	for i := range out.SignOffs {
		out.SignOffs[i].At = out.SignOffs[i].At.UTC()
	}
	if c.Transit != nil {
		tr := *c.Transit
		tr.Since = tr.Since.UTC()
		out.Transit = &tr
	}
	return &out
}

// overTheWire converts c to its proto, encodes and decodes it, and converts it back.
func overTheWire(t *testing.T, c *casework.Case) *casework.Case {
	t.Helper()
	b, err := proto.Marshal(grpcapi.CaseToProto(c))
	if err != nil {
		t.Fatal(err)
	}
	var p pb.Case
	if err := proto.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	return grpcapi.CaseFromProto(&p)
}

func TestCaseProtoRoundTripEveryField(t *testing.T) {
	c := fullCase()
	if z := zeroFields(reflect.ValueOf(*c), "Case"); len(z) != 0 {
		t.Fatalf("fullCase leaves %v zero: set them so that the round trip covers them", z)
	}
	got := overTheWire(t, c)

	if got.QueryCodeHash != "" || got.RequestID != "" {
		t.Errorf("the query code's hash or salt crossed the wire: %q %q", got.QueryCodeHash, got.RequestID)
	}
	want := utc(c)
	want.QueryCodeHash, want.RequestID = "", "" // by design they never leave the node
	if g := utc(got); !reflect.DeepEqual(g, want) {
		t.Errorf("round trip changed the case:\n got %+v\nwant %+v", g, want)
	}
}

func TestCaseProtoRoundTripKeepsHistoryVerifiable(t *testing.T) {
	c := acceptedCase(t)
	if err := c.VerifyHistory(); err != nil {
		t.Fatal(err)
	}
	got := overTheWire(t, c)
	if err := got.VerifyHistory(); err != nil {
		t.Errorf("VerifyHistory after the round trip: %v", err)
	}
	if got.LastHash() != c.LastHash() || got.History[0].PrevHash != c.History[0].PrevHash {
		t.Errorf("hashes changed")
	}
	if !got.CreatedAt.Equal(c.CreatedAt) || !got.UpdatedAt.Equal(c.UpdatedAt) || !got.History[0].At.Equal(c.History[0].At) {
		t.Errorf("times changed: %v %v, want %v %v", got.CreatedAt, got.UpdatedAt, c.CreatedAt, c.UpdatedAt)
	}
	want := utc(c)
	want.QueryCodeHash, want.RequestID = "", ""
	if g := utc(got); !reflect.DeepEqual(g, want) {
		t.Errorf("round trip changed the case:\n got %+v\nwant %+v", g, want)
	}

	// A tampered event still fails after the trip.
	p := grpcapi.CaseToProto(c)
	p.History[0].Note = "forged"
	if err := grpcapi.CaseFromProto(p).VerifyHistory(); err == nil {
		t.Errorf("a tampered proto event verifies")
	}
}

// Accept makes Materials an empty, non-nil slice when there are none; the proto cannot tell
// empty from absent, so the converted case has nil (JSON "materials": null instead of []).
func TestCaseProtoRoundTripNoMaterials(t *testing.T) {
	req := validRequest()
	req.Materials = nil
	c, err := casework.Accept(grpcapi.SubmissionFromProto(req), casework.Acceptance{Number: apitest.Number, Site: apitest.Site, At: apitest.At})
	if err != nil {
		t.Fatal(err)
	}
	got := overTheWire(t, c)
	if len(got.Materials) != 0 {
		t.Errorf("materials %v", got.Materials)
	}
	if err := got.VerifyHistory(); err != nil {
		t.Error(err)
	}
}

// The zero time has no int64 UnixNano: it must travel as 0 and come back zero.
func TestCaseProtoRoundTripZeroTimes(t *testing.T) {
	c := fullCase()
	c.UpdatedAt = time.Time{}
	got := overTheWire(t, c)
	if !got.UpdatedAt.IsZero() {
		t.Errorf("a zero UpdatedAt comes back as %v", got.UpdatedAt)
	}
}

func TestSubmissionProtoRoundTrip(t *testing.T) {
	req := validRequest()
	req.Materials = append(req.Materials, &pb.Material{Name: "租房合同"})
	if z := zeroFields(reflect.ValueOf(*grpcapi.SubmissionFromProto(validRequest())), "Submission"); len(z) != 0 {
		t.Fatalf("validRequest leaves %v zero: set them so that the round trip covers them", z)
	}
	s := grpcapi.SubmissionFromProto(req)
	want := &casework.Submission{
		Kind: casework.KindApplication, ItemCode: "QT-0010", Title: "居住证办理", Description: "满半年",
		Applicant: &casework.Applicant{Name: "张三", IDNumber: "63010219900101123X", Phone: "13800138000"},
		Materials: []casework.Material{{Name: "身份证复印件", Digest: strings.Repeat("ab", 32), Pages: 2}, {Name: "租房合同"}},
		RequestID: "req-1", Actor: "clerk-07", DecideTier: "township", CollectSite: "cd-dgdj-ngj",
	}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("SubmissionFromProto = %+v, want %+v", s, want)
	}
	if back := grpcapi.SubmissionToProto(s); !proto.Equal(back, req) {
		t.Errorf("SubmissionToProto(SubmissionFromProto(r)) = %v, want %v", back, req)
	}
	// No applicant stays no applicant.
	req.Applicant = nil
	if s := grpcapi.SubmissionFromProto(req); s.Applicant != nil {
		t.Errorf("applicant %+v from a request without one", s.Applicant)
	}
	if r := grpcapi.SubmissionToProto(&casework.Submission{}); r.Applicant != nil {
		t.Errorf("applicant %v from a submission without one", r.Applicant)
	}
}

// departed is acceptedCase moved out of apitest.Site to apitest.Parent: locked, with a move event.
func departed(t *testing.T, m casework.Move) *casework.Case {
	t.Helper()
	c := acceptedCase(t)
	if _, err := c.Depart(casework.Departure{Move: m, Site: apitest.Site, To: apitest.Parent, Actor: "lead-2",
		Reason: "超出本级权限", At: apitest.At.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCaseProtoTransitAndSites(t *testing.T) {
	for _, m := range []casework.Move{casework.MoveEscalate, casework.MoveRelay, casework.MoveHandDown, casework.MoveReturn} {
		t.Run(string(m), func(t *testing.T) {
			c := departed(t, m)
			p := grpcapi.CaseToProto(c)
			tr := p.GetTransit()
			if tr.GetHandoffId() != casework.HandoffID(apitest.Number, 2) || tr.GetToSite() != apitest.Parent ||
				tr.GetMove() != string(m) || tr.GetSince() != apitest.At.Add(time.Hour).UnixNano() {
				t.Errorf("proto transit %v", tr)
			}
			last := p.GetHistory()[len(p.GetHistory())-1]
			if last.GetFromSite() != apitest.Site || last.GetToSite() != apitest.Parent {
				t.Errorf("proto event from %q to %q, want %q to %q", last.GetFromSite(), last.GetToSite(), apitest.Site, apitest.Parent)
			}
			if first := p.GetHistory()[0]; first.GetFromSite() != "" || first.GetToSite() != "" {
				t.Errorf("the submission event got sites: %v", first)
			}

			got := overTheWire(t, c)
			// The sites are hashed: the history verifies only if they crossed intact.
			if err := got.VerifyHistory(); err != nil {
				t.Errorf("VerifyHistory after the round trip: %v", err)
			}
			if got.Transit == nil || !got.Transit.Since.Equal(c.Transit.Since) {
				t.Fatalf("transit %+v, want %+v", got.Transit, c.Transit)
			}
			want := utc(c)
			want.QueryCodeHash, want.RequestID = "", ""
			if g := utc(got); !reflect.DeepEqual(g, want) {
				t.Errorf("round trip changed the case:\n got %+v\nwant %+v", g, want)
			}
		})
	}
}

func TestCaseProtoNoTransit(t *testing.T) {
	c := departed(t, casework.MoveEscalate)
	if err := c.Arrive(c.Transit.HandoffID, apitest.Parent, apitest.At.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	p := grpcapi.CaseToProto(c)
	if p.Transit != nil {
		t.Errorf("a case not in transit has proto transit %v", p.Transit)
	}
	got := overTheWire(t, c)
	if got.Transit != nil {
		t.Errorf("a case not in transit came back with %+v", got.Transit)
	}
	if got.HolderSite != apitest.Parent || got.CameFrom() != apitest.Site {
		t.Errorf("holder %q, came from %q", got.HolderSite, got.CameFrom())
	}
	if err := got.VerifyHistory(); err != nil {
		t.Errorf("VerifyHistory: %v", err)
	}

	// A transit without a time travels as 0 and comes back zero.
	c.Transit = &casework.Transit{HandoffID: "x#1", To: apitest.Parent, Move: casework.MoveRelay}
	if got := overTheWire(t, c); got.Transit == nil || !got.Transit.Since.IsZero() || *got.Transit != *c.Transit {
		t.Errorf("transit %+v, want %+v", got.Transit, c.Transit)
	}
}
