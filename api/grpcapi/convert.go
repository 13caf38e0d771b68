package grpcapi

import (
	"encoding/json"
	"time"

	pb "github.com/govgrid/govgrid/api/govgridpb"
	"github.com/govgrid/govgrid/casework"
)

// SubmissionFromProto converts a gRPC submission into the domain's.
func SubmissionFromProto(r *pb.SubmitCaseRequest) *casework.Submission {
	s := &casework.Submission{
		Kind:        casework.Kind(r.GetKind()),
		ItemCode:    r.GetItemCode(),
		Title:       r.GetTitle(),
		Description: r.GetDescription(),
		DecideTier:  r.GetDecideTier(),
		RequestID:   r.GetRequestId(),
		Actor:       r.GetActor(),
		CollectSite: r.GetCollectSite(),
	}
	if a := r.GetApplicant(); a != nil {
		s.Applicant = &casework.Applicant{Name: a.GetName(), IDNumber: a.GetIdNumber(), Phone: a.GetPhone()}
	}
	for _, m := range r.GetMaterials() {
		s.Materials = append(s.Materials, casework.Material{Name: m.GetName(), Digest: m.GetDigest(), Pages: int(m.GetPages())})
	}
	return s
}

// SubmissionToProto converts a domain submission into a gRPC request.
func SubmissionToProto(s *casework.Submission) *pb.SubmitCaseRequest {
	r := &pb.SubmitCaseRequest{
		Kind: string(s.Kind), ItemCode: s.ItemCode, Title: s.Title, Description: s.Description,
		DecideTier: s.DecideTier, RequestId: s.RequestID, Actor: s.Actor, CollectSite: s.CollectSite,
	}
	if s.Applicant != nil {
		r.Applicant = &pb.Applicant{Name: s.Applicant.Name, IdNumber: s.Applicant.IDNumber, Phone: s.Applicant.Phone}
	}
	for _, m := range s.Materials {
		r.Materials = append(r.Materials, &pb.Material{Name: m.Name, Digest: m.Digest, Pages: int32(m.Pages)})
	}
	return r
}

// CaseToProto converts a case for a gRPC answer; the query code's hash never leaves the node.
func CaseToProto(c *casework.Case) *pb.Case {
	out := &pb.Case{
		Number: c.Number, Kind: string(c.Kind), ItemCode: c.ItemCode, Title: c.Title,
		Description: c.Description, Status: string(c.Status), HolderSite: c.HolderSite,
		OriginSite: c.OriginSite, Version: c.Version, QueryCode: c.QueryCode,
		CreatedAt: nanos(c.CreatedAt), UpdatedAt: nanos(c.UpdatedAt), DecideTier: c.DecideTier,
		Applicant:   &pb.Applicant{Name: c.Applicant.Name, IdNumber: c.Applicant.IDNumber, Phone: c.Applicant.Phone},
		CollectSite: c.CollectSite, Missing: c.Missing, PausedSeconds: c.PausedSeconds, ReviewedBy: c.ReviewedBy,
		Decision: c.Decision,
	}
	if c.PausedSince != nil {
		out.PausedSince = nanos(*c.PausedSince)
	}
	for _, so := range c.SignOffs {
		out.SignOffs = append(out.SignOffs, &pb.SignOff{Department: so.Department, Actor: so.Actor, At: nanos(so.At)})
	}
	if c.Seal != nil {
		out.SealJson, _ = json.Marshal(c.Seal)
	}
	if b := c.Bill; b != nil {
		out.Bill = &pb.Bill{TotalFen: b.TotalFen, Paid: b.Paid, PaymentRef: b.PaymentRef}
		if b.PaidAt != nil {
			out.Bill.PaidAt = nanos(*b.PaidAt)
		}
		for _, l := range b.Lines {
			out.Bill.Lines = append(out.Bill.Lines, &pb.FeeLine{Name: l.Name, StandardFen: l.StandardFen, ChargedFen: l.ChargedFen,
				Basis: l.Basis, Adjusted: l.Adjusted, Reason: l.Reason, Exempt: l.Exempt, ExemptReason: l.ExemptReason})
		}
	}
	for _, m := range c.Materials {
		out.Materials = append(out.Materials, &pb.Material{Name: m.Name, Digest: m.Digest, Pages: int32(m.Pages)})
	}
	for _, e := range c.History {
		out.History = append(out.History, &pb.Event{
			Seq: e.Seq, Type: string(e.Type), At: nanos(e.At), Site: e.Site, Actor: e.Actor,
			Note: e.Note, FromStatus: string(e.FromStatus), ToStatus: string(e.ToStatus),
			PrevHash: e.PrevHash, Hash: e.Hash, FromSite: e.FromSite, ToSite: e.ToSite, Role: e.Role,
		})
	}
	if t := c.Transit; t != nil {
		out.Transit = &pb.Transit{HandoffId: t.HandoffID, ToSite: t.To, Move: string(t.Move), Since: nanos(t.Since)}
	}
	return out
}

// CaseFromProto converts a gRPC case into the domain's (clients and tests).
func CaseFromProto(p *pb.Case) *casework.Case {
	c := &casework.Case{
		Number: p.GetNumber(), Kind: casework.Kind(p.GetKind()), ItemCode: p.GetItemCode(),
		Title: p.GetTitle(), Description: p.GetDescription(), Status: casework.Status(p.GetStatus()),
		HolderSite: p.GetHolderSite(), OriginSite: p.GetOriginSite(), Version: p.GetVersion(),
		QueryCode: p.GetQueryCode(), DecideTier: p.GetDecideTier(),
		CreatedAt: fromNanos(p.GetCreatedAt()), UpdatedAt: fromNanos(p.GetUpdatedAt()),
		CollectSite: p.GetCollectSite(), Missing: p.GetMissing(), PausedSeconds: p.GetPausedSeconds(),
		ReviewedBy: p.GetReviewedBy(), Decision: p.GetDecision(),
	}
	if p.GetPausedSince() != 0 {
		t := fromNanos(p.GetPausedSince())
		c.PausedSince = &t
	}
	for _, so := range p.GetSignOffs() {
		c.SignOffs = append(c.SignOffs, casework.SignOff{Department: so.GetDepartment(), Actor: so.GetActor(), At: fromNanos(so.GetAt())})
	}
	if len(p.GetSealJson()) > 0 {
		var s casework.Seal
		if json.Unmarshal(p.GetSealJson(), &s) == nil {
			c.Seal = &s
		}
	}
	if b := p.GetBill(); b != nil {
		c.Bill = &casework.Bill{TotalFen: b.GetTotalFen(), Paid: b.GetPaid(), PaymentRef: b.GetPaymentRef(), Lines: []casework.FeeLine{}}
		if b.GetPaidAt() != 0 {
			at := fromNanos(b.GetPaidAt())
			c.Bill.PaidAt = &at
		}
		for _, l := range b.GetLines() {
			c.Bill.Lines = append(c.Bill.Lines, casework.FeeLine{Name: l.GetName(), StandardFen: l.GetStandardFen(), ChargedFen: l.GetChargedFen(),
				Basis: l.GetBasis(), Adjusted: l.GetAdjusted(), Reason: l.GetReason(), Exempt: l.GetExempt(), ExemptReason: l.GetExemptReason()})
		}
	}
	if a := p.GetApplicant(); a != nil {
		c.Applicant = casework.Applicant{Name: a.GetName(), IDNumber: a.GetIdNumber(), Phone: a.GetPhone()}
	}
	c.Materials = []casework.Material{}
	for _, m := range p.GetMaterials() {
		c.Materials = append(c.Materials, casework.Material{Name: m.GetName(), Digest: m.GetDigest(), Pages: int(m.GetPages())})
	}
	for _, e := range p.GetHistory() {
		c.History = append(c.History, casework.Event{
			Seq: e.GetSeq(), Type: casework.EventType(e.GetType()), At: fromNanos(e.GetAt()),
			Site: e.GetSite(), Actor: e.GetActor(), Note: e.GetNote(),
			FromStatus: casework.Status(e.GetFromStatus()), ToStatus: casework.Status(e.GetToStatus()),
			PrevHash: e.GetPrevHash(), Hash: e.GetHash(), FromSite: e.GetFromSite(), ToSite: e.GetToSite(),
			Role: e.GetRole(),
		})
	}
	if t := p.GetTransit(); t != nil {
		c.Transit = &casework.Transit{HandoffID: t.GetHandoffId(), To: t.GetToSite(), Move: casework.Move(t.GetMove()), Since: fromNanos(t.GetSince())}
	}
	return c
}

// nanos is t as Unix nanoseconds, with 0 for the zero time (whose UnixNano is undefined).
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// CitizenViewToProto converts a citizen's view of a case for a gRPC answer.
func CitizenViewToProto(v *casework.CitizenView) *pb.CitizenView {
	out := &pb.CitizenView{
		Number: v.Number, Kind: string(v.Kind), ItemCode: v.ItemCode, Title: v.Title, Status: string(v.Status),
		HolderSite: v.HolderSite, InTransitTo: v.InTransitTo, Materials: v.Materials,
		CreatedAt: nanos(v.CreatedAt), UpdatedAt: nanos(v.UpdatedAt),
		Applicant: &pb.Applicant{Name: v.Applicant.Name, IdNumber: v.Applicant.IDNumber, Phone: v.Applicant.Phone},
		Missing:   v.Missing, Decision: v.Decision, CollectSite: v.CollectSite,
	}
	if v.Seal != nil {
		out.SealJson, _ = json.Marshal(v.Seal)
	}
	for _, m := range v.Timeline {
		out.Timeline = append(out.Timeline, &pb.CitizenMoment{Type: string(m.Type), At: nanos(m.At), Site: m.Site, ToStatus: string(m.ToStatus), ToSite: m.ToSite})
	}
	return out
}

// CitizenViewFromProto converts a gRPC citizen's view into the domain's.
func CitizenViewFromProto(p *pb.CitizenView) *casework.CitizenView {
	v := &casework.CitizenView{
		Number: p.GetNumber(), Kind: casework.Kind(p.GetKind()), ItemCode: p.GetItemCode(), Title: p.GetTitle(),
		Status: casework.Status(p.GetStatus()), HolderSite: p.GetHolderSite(), InTransitTo: p.GetInTransitTo(),
		Materials: append([]string{}, p.GetMaterials()...), CreatedAt: fromNanos(p.GetCreatedAt()), UpdatedAt: fromNanos(p.GetUpdatedAt()),
		Timeline: []casework.CitizenMoment{},
		Missing:  p.GetMissing(), Decision: p.GetDecision(), CollectSite: p.GetCollectSite(),
	}
	if len(p.GetSealJson()) > 0 {
		var s casework.Seal
		if json.Unmarshal(p.GetSealJson(), &s) == nil {
			v.Seal = &s
		}
	}
	if a := p.GetApplicant(); a != nil {
		v.Applicant = casework.Applicant{Name: a.GetName(), IDNumber: a.GetIdNumber(), Phone: a.GetPhone()}
	}
	for _, m := range p.GetTimeline() {
		v.Timeline = append(v.Timeline, casework.CitizenMoment{Type: casework.EventType(m.GetType()), At: fromNanos(m.GetAt()),
			Site: m.GetSite(), ToStatus: casework.Status(m.GetToStatus()), ToSite: m.GetToSite()})
	}
	return v
}

// StepFromProto converts a gRPC step request into the domain's (the node fills who, where, when).
func StepFromProto(r *pb.TakeStepRequest) casework.StepRequest {
	out := casework.StepRequest{Step: casework.Step(r.GetStep()), Comment: r.GetComment(), Reason: r.GetReason(),
		LegalBasis: r.GetLegalBasis(), Missing: r.GetMissing(), Exception: r.GetException(), Department: r.GetDepartment(),
		FeeLine: r.GetFeeLine(), AmountFen: r.GetAmountFen(), PaymentRef: r.GetPaymentRef()}
	for _, m := range r.GetMaterials() {
		out.Materials = append(out.Materials, casework.Material{Name: m.GetName(), Digest: m.GetDigest(), Pages: int(m.GetPages())})
	}
	return out
}
