package casework

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// The life of an application (办件流程), as one state machine with no I/O and no clock: the
// state machine of the site calls Case.Take with the command's time.
//
//	submitted ──accept──▶ accepted ──process──▶ processing ──review──▶ reviewed ──approve──▶ approved ─┐
//	    │  ▲                  │ (即办: complete)                                    └──deny────▶ denied ───┤
//	    │  └──supplement── supplement_requested                                                           ▼
//	    ├──request-supplement─┘                                                  completed ◀──complete──┘
//	    └──reject──▶ not_accepted                                                    ├──issue-certificate──▶ certificate_issued
//	                                                                                 └──deliver──▶ delivered
//	withdraw: from any open status (submitted … approved) to withdrawn.
//	sign-off: a named department's sign-off of a joint (联办) item, while processing, reviewed or approved.
//
// Intake (accept, reject, request-supplement, supplement, withdraw) happens where the case is held;
// the decision (process, review, approve, deny, complete, sign-off) only at a site of the deciding
// tier; the certificate at the collection site the citizen chose.

// The statuses of the life of a case, beyond StatusSubmitted.
const (
	StatusAccepted            Status = "accepted"             // 受理
	StatusNotAccepted         Status = "not_accepted"         // 不予受理
	StatusSupplementRequested Status = "supplement_requested" // 补正: the clock stops
	StatusProcessing          Status = "processing"           // 承办
	StatusReviewed            Status = "reviewed"             // 审核
	StatusApproved            Status = "approved"             // 核准
	StatusDenied              Status = "denied"               // 不予许可
	StatusCompleted           Status = "completed"            // 办结
	StatusCertificateIssued   Status = "certificate_issued"   // 领证
	StatusDelivered           Status = "delivered"            // 送达
	StatusWithdrawn           Status = "withdrawn"            // 撤回
)

// Step is one step of a case's life: a verb under /v1/cases/{number}/.
type Step string

// The steps.
const (
	StepAccept            Step = "accept"
	StepReject            Step = "reject"
	StepRequestSupplement Step = "request-supplement"
	StepSupplement        Step = "supplement"
	StepProcess           Step = "process"
	StepReview            Step = "review"
	StepApprove           Step = "approve"
	StepDeny              Step = "deny"
	StepComplete          Step = "complete"
	StepIssueCertificate  Step = "issue-certificate"
	StepDeliver           Step = "deliver"
	StepWithdraw          Step = "withdraw"
	StepSignOff           Step = "sign-off"
	// The bill's steps (bill.go): they keep the case's status.
	StepCharge Step = "charge"
	StepExempt Step = "exempt"
	StepPay    Step = "pay"
)

// Steps lists every step, in the order of a case's life.
var Steps = []Step{StepAccept, StepReject, StepRequestSupplement, StepSupplement, StepProcess, StepReview,
	StepApprove, StepDeny, StepSignOff, StepCharge, StepExempt, StepPay, StepComplete, StepIssueCertificate,
	StepDeliver, StepWithdraw}

// Valid reports whether s is a known step.
func (s Step) Valid() bool { return slices.Contains(Steps, s) }

// Where says at which site a step may be taken.
type Where int

// The places of the steps.
const (
	AtHolder     Where = iota // intake: where the case is held
	AtDeciding                // the decision: a site of the item's deciding tier
	AtCollection              // the certificate: the collection site the citizen chose
)

// StepPlace is where each step is taken.
var StepPlace = map[Step]Where{
	StepAccept: AtHolder, StepReject: AtHolder, StepRequestSupplement: AtHolder, StepSupplement: AtHolder,
	StepWithdraw: AtHolder, StepProcess: AtDeciding, StepReview: AtDeciding, StepApprove: AtDeciding,
	StepDeny: AtDeciding, StepSignOff: AtDeciding, StepComplete: AtDeciding,
	StepIssueCertificate: AtCollection, StepDeliver: AtCollection,
	StepCharge: AtHolder, StepExempt: AtHolder, StepPay: AtHolder,
}

// The event types of the steps: one per step.
const (
	EventAccepted            EventType = "accepted"
	EventNotAccepted         EventType = "not_accepted"
	EventSupplementRequested EventType = "supplement_requested"
	EventSupplemented        EventType = "supplemented"
	EventProcessing          EventType = "processing"
	EventReviewed            EventType = "reviewed"
	EventApproved            EventType = "approved"
	EventDenied              EventType = "denied"
	EventSignedOff           EventType = "signed_off"
	EventCompleted           EventType = "completed"
	EventCertificateIssued   EventType = "certificate_issued"
	EventDelivered           EventType = "delivered"
	EventWithdrawn           EventType = "withdrawn"
	EventCharged             EventType = "charged"
	EventExempted            EventType = "exempted"
	EventPaid                EventType = "paid"
)

var stepEvents = map[Step]EventType{
	StepAccept: EventAccepted, StepReject: EventNotAccepted, StepRequestSupplement: EventSupplementRequested,
	StepSupplement: EventSupplemented, StepProcess: EventProcessing, StepReview: EventReviewed,
	StepApprove: EventApproved, StepDeny: EventDenied, StepSignOff: EventSignedOff, StepComplete: EventCompleted,
	StepIssueCertificate: EventCertificateIssued, StepDeliver: EventDelivered, StepWithdraw: EventWithdrawn,
	StepCharge: EventCharged, StepExempt: EventExempted, StepPay: EventPaid,
}

// transitions is the state machine: from a status, the steps allowed and where each leads.
// complete from accepted (an immediate item), from approved and denied; sign-off keeps the status.
var transitions = map[Status]map[Step]Status{
	StatusSubmitted: {StepAccept: StatusAccepted, StepReject: StatusNotAccepted,
		StepRequestSupplement: StatusSupplementRequested, StepWithdraw: StatusWithdrawn},
	StatusSupplementRequested: {StepSupplement: StatusSubmitted, StepReject: StatusNotAccepted, StepWithdraw: StatusWithdrawn},
	StatusAccepted: {StepProcess: StatusProcessing, StepComplete: StatusCompleted, StepWithdraw: StatusWithdrawn,
		StepCharge: StatusAccepted, StepExempt: StatusAccepted, StepPay: StatusAccepted},
	StatusProcessing: {StepReview: StatusReviewed, StepSignOff: StatusProcessing, StepWithdraw: StatusWithdrawn,
		StepCharge: StatusProcessing, StepExempt: StatusProcessing, StepPay: StatusProcessing},
	StatusReviewed: {StepApprove: StatusApproved, StepDeny: StatusDenied, StepSignOff: StatusReviewed, StepWithdraw: StatusWithdrawn,
		StepCharge: StatusReviewed, StepExempt: StatusReviewed, StepPay: StatusReviewed},
	StatusApproved: {StepComplete: StatusCompleted, StepSignOff: StatusApproved,
		StepCharge: StatusApproved, StepExempt: StatusApproved, StepPay: StatusApproved},
	StatusDenied:    {StepComplete: StatusCompleted},
	StatusCompleted: {StepIssueCertificate: StatusCertificateIssued, StepDeliver: StatusDelivered, StepPay: StatusCompleted},
}

// Mode is how an item is processed (办理方式).
type Mode string

// The modes, as the catalogue names them.
const (
	ModeImmediate Mode = "immediate" // 即办: may be completed at acceptance
	ModePromised  Mode = "promised"  // 承诺件
	ModeJoint     Mode = "joint"     // 联办: each named department signs off before completion
	ModeReported  Mode = "reported"  // 上报: decided above
)

// Modes lists the modes.
var Modes = []Mode{ModeImmediate, ModePromised, ModeJoint, ModeReported}

// ItemRules is what the catalogue says of a case's item that its life depends on.
type ItemRules struct {
	Mode             Mode     `json:"mode,omitempty"`
	JointDepartments []string `json:"joint_departments,omitempty"`
	// RequiredMaterials are the names of the materials that must be handed in.
	RequiredMaterials []string `json:"required_materials,omitempty"`
	// DecideTier is the tier whose site decides the case.
	DecideTier string `json:"decide_tier,omitempty"`
	// Fees are the item's fee lines: the case's bill is made of them at acceptance.
	Fees []Fee `json:"fees,omitempty"`
}

// StepRequest is one step asked of a case, with what it records.
type StepRequest struct {
	Step Step `json:"step"`
	// Who, as what, where, when: the signed-in account, the role it acts in, the site and the
	// command's time.
	Actor string    `json:"actor"`
	Role  string    `json:"role,omitempty"`
	Site  string    `json:"site"`
	At    time.Time `json:"at"`
	// SiteTier is the tier of Site.
	SiteTier string `json:"site_tier,omitempty"`
	Comment  string `json:"comment,omitempty"`
	// Reason and LegalBasis: a rejection's and a denial's (both required for a rejection).
	Reason     string `json:"reason,omitempty"`
	LegalBasis string `json:"legal_basis,omitempty"`
	// Missing names every material a supplement request asks for, at once.
	Missing []string `json:"missing,omitempty"`
	// Materials are handed in with a supplement.
	Materials []Material `json:"materials,omitempty"`
	// Exception accepts a case with a required material missing, and says why.
	Exception string `json:"exception,omitempty"`
	// Department is the department that signs off a joint item.
	Department string `json:"department,omitempty"`
	// The bill's steps: the line charged or exempted ("" for the only line, or the whole bill
	// to exempt), the amount in fen (charged, or paid: the whole bill), the payment's reference.
	FeeLine    string `json:"fee_line,omitempty"`
	AmountFen  int64  `json:"amount_fen,omitempty"`
	PaymentRef string `json:"payment_ref,omitempty"`
}

// SignOff is a department's sign-off of a joint item.
type SignOff struct {
	Department string    `json:"department"`
	Actor      string    `json:"actor"`
	At         time.Time `json:"at"`
}

// StepError refuses a step from the wrong status: it names the status and the steps allowed now.
type StepError struct {
	Step    Step
	Status  Status
	Allowed []Step
	Reason  string
}

func (e *StepError) Error() string {
	allowed := make([]string, len(e.Allowed))
	for i, s := range e.Allowed {
		allowed[i] = string(s)
	}
	msg := fmt.Sprintf("%s is not allowed while the case is %s", e.Step, e.Status)
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	if len(allowed) == 0 {
		return msg + "; no step is allowed now"
	}
	return msg + "; allowed now: " + strings.Join(allowed, ", ")
}

// AllowedSteps are the steps the state machine allows from status for an item of rules, in the
// order of Steps (a sign-off only for a joint item, completion at acceptance only for an
// immediate one).
func AllowedSteps(status Status, rules ItemRules) []Step {
	var out []Step
	for _, s := range Steps {
		if _, ok := transitions[status][s]; !ok ||
			s == StepSignOff && rules.Mode != ModeJoint ||
			(s == StepCharge || s == StepExempt || s == StepPay) && len(rules.Fees) == 0 ||
			s == StepComplete && status == StatusAccepted && rules.Mode != ModeImmediate {
			continue
		}
		out = append(out, s)
	}
	return out
}

// StepsAt are the steps c allows now, taken by actor at site (of tier siteTier): those the state
// machine allows from its status for the item, taken at their place, and not the approval by the
// person who reviewed it (一审一核). Who may take each is the role matrix's business.
func (c *Case) StepsAt(rules ItemRules, site, siteTier, actor string) []Step {
	if c.Transit != nil {
		return nil
	}
	var out []Step
	for _, s := range AllowedSteps(c.Status, rules) {
		if c.checkPlace(StepRequest{Step: s, Site: site, SiteTier: siteTier}, rules) != nil {
			continue
		}
		if (s == StepApprove || s == StepDeny) && actor != "" && actor == c.ReviewedBy {
			continue
		}
		out = append(out, s)
	}
	return out
}

// Take applies step r to c under the item's rules: it checks the request, the status, the place
// and the rules (materials at acceptance, an immediate item's completion, a joint item's sign-offs,
// 一审一核: the approver is not the reviewer), then changes c and appends the step's event. On an
// error c is unchanged. A step from the wrong status is a *StepError; a rule broken is a
// *ConflictError; bad input is FieldErrors.
func (c *Case) Take(r StepRequest, rules ItemRules) error {
	if err := r.Validate(); err != nil {
		return err
	}
	if c.Transit != nil {
		return conflictf("the case is on its way to %s: no step until it arrives", c.Transit.To)
	}
	to, ok := transitions[c.Status][r.Step]
	if !ok {
		return &StepError{Step: r.Step, Status: c.Status, Allowed: AllowedSteps(c.Status, rules)}
	}
	if err := c.checkPlace(r, rules); err != nil {
		return err
	}
	var note []string
	switch r.Step {
	case StepAccept:
		if rules.DecideTier != "" {
			c.DecideTier = rules.DecideTier // the item says who decides it
		}
		if len(rules.Fees) > 0 && c.Bill == nil {
			c.Bill = newBill(rules.Fees) // one bill per case
		}
		if missing := c.missingRequired(rules); len(missing) > 0 {
			if r.Exception == "" {
				return conflictf("required materials are missing: %s (request a supplement, or accept with an exception and its reason)", strings.Join(missing, "、"))
			}
			note = append(note, "缺件受理 accepted without: "+strings.Join(missing, "、")+"; 理由 "+r.Exception)
		}
	case StepReject:
		note = append(note, "理由 "+r.Reason, "依据 "+r.LegalBasis)
	case StepRequestSupplement:
		c.Missing = append([]string(nil), r.Missing...)
		paused := r.At
		c.PausedSince = &paused
		note = append(note, "一次性告知 missing: "+strings.Join(r.Missing, "、"))
	case StepSupplement:
		if len(c.Materials)+len(r.Materials) > MaxMaterials {
			return FieldErrors{{Field: "materials", Reason: fmt.Sprintf("a case has at most %d materials", MaxMaterials)}}
		}
		c.Materials = append(c.Materials, r.Materials...)
		c.resume(r.At)
		names := make([]string, len(r.Materials))
		for i, m := range r.Materials {
			names[i] = m.Name
		}
		note = append(note, "补正 handed in: "+strings.Join(names, "、"))
		c.Missing = nil
	case StepReview:
		c.ReviewedBy = r.Actor
	case StepApprove:
		if r.Actor == c.ReviewedBy {
			return conflictf("一审一核: %s reviewed this case and may not also approve it", r.Actor)
		}
		c.Decision = DecisionApproved
	case StepDeny:
		if r.Actor == c.ReviewedBy {
			return conflictf("一审一核: %s reviewed this case and may not also decide it", r.Actor)
		}
		c.Decision = DecisionDenied
		note = append(note, "理由 "+r.Reason)
		if r.LegalBasis != "" {
			note = append(note, "依据 "+r.LegalBasis)
		}
	case StepSignOff:
		if rules.Mode != ModeJoint {
			return &StepError{Step: r.Step, Status: c.Status, Allowed: AllowedSteps(c.Status, rules), Reason: "only a joint (联办) item is signed off"}
		}
		if !slices.Contains(rules.JointDepartments, r.Department) {
			return conflictf("%s does not sign off this item (joint departments: %s)", r.Department, strings.Join(rules.JointDepartments, ", "))
		}
		if slices.ContainsFunc(c.SignOffs, func(s SignOff) bool { return s.Department == r.Department }) {
			return conflictf("%s has signed off already", r.Department)
		}
		c.SignOffs = append(c.SignOffs, SignOff{Department: r.Department, Actor: r.Actor, At: r.At})
		note = append(note, "会签 "+r.Department)
	case StepComplete:
		if c.Status == StatusAccepted && rules.Mode != ModeImmediate {
			return &StepError{Step: r.Step, Status: c.Status, Allowed: AllowedSteps(c.Status, rules),
				Reason: "only an immediate (即办) item is completed at acceptance"}
		}
		if c.Decision == DecisionApproved && rules.Mode == ModeJoint {
			if left := c.unsignedDepartments(rules); len(left) > 0 {
				return conflictf("a joint item needs every department's sign-off first: %s have not signed", strings.Join(left, ", "))
			}
		}
		if c.Status == StatusAccepted {
			c.Decision = DecisionApproved
		}
	case StepIssueCertificate, StepDeliver:
		if c.Decision != DecisionApproved {
			return conflictf("the case was %s: there is no certificate", c.Decision)
		}
		if c.Bill.Owes() {
			return conflictf("the bill of %s is not paid yet: pay it first", Yuan(c.Bill.TotalFen))
		}
	case StepCharge, StepExempt, StepPay:
		if c.Bill == nil {
			return conflictf("the case has no bill: its item charges nothing")
		}
		bill := *c.Bill
		bill.Lines = slices.Clone(c.Bill.Lines)
		var what string
		var err error
		switch r.Step {
		case StepCharge:
			what, err = bill.charge(r)
		case StepExempt:
			what, err = bill.exempt(r)
		default:
			what, err = bill.pay(r)
		}
		if err != nil {
			return err
		}
		c.Bill = &bill
		note = append(note, what)
		if r.Reason != "" && r.Step != StepPay {
			note = append(note, "理由 "+r.Reason)
		}
	case StepWithdraw:
		c.resume(r.At)
	}
	if r.Comment != "" {
		note = append(note, r.Comment)
	}
	from := c.Status
	c.Status = to
	c.appendEvent(Event{Type: stepEvents[r.Step], At: r.At, Site: r.Site, Actor: r.Actor, Role: r.Role,
		Note: strings.Join(note, "; "), FromStatus: from, ToStatus: to})
	return nil
}

// The decisions of a case.
const (
	DecisionApproved = "approved"
	DecisionDenied   = "denied"
)

// checkPlace refuses a step taken at the wrong site.
func (c *Case) checkPlace(r StepRequest, rules ItemRules) error {
	switch StepPlace[r.Step] {
	case AtHolder:
		if c.HolderSite != r.Site {
			return conflictf("%s is taken where the case is held: %s", r.Step, c.HolderSite)
		}
	case AtDeciding:
		decide := rules.DecideTier
		if decide == "" {
			decide = c.DecideTier
		}
		if decide != "" && r.SiteTier != decide {
			return conflictf("%s is taken at the deciding site (tier %s); the case is held at %s", r.Step, decide, c.HolderSite)
		}
		if c.HolderSite != r.Site {
			return conflictf("%s is taken where the case is held: %s", r.Step, c.HolderSite)
		}
	case AtCollection:
		if want := c.CollectionSite(); want != r.Site {
			return conflictf("the certificate is issued at the collection site the applicant chose: %s", want)
		}
	}
	return nil
}

// CollectionSite is where the certificate is collected: the site chosen at application, or
// where the case was taken in.
func (c *Case) CollectionSite() string {
	if c.CollectSite != "" {
		return c.CollectSite
	}
	return c.OriginSite
}

// missingRequired lists the required materials of rules that c lacks.
func (c *Case) missingRequired(rules ItemRules) []string {
	var missing []string
	for _, need := range rules.RequiredMaterials {
		if !slices.ContainsFunc(c.Materials, func(m Material) bool { return m.Name == need }) {
			missing = append(missing, need)
		}
	}
	return missing
}

// unsignedDepartments lists the joint departments that have not signed off.
func (c *Case) unsignedDepartments(rules ItemRules) []string {
	var left []string
	for _, d := range rules.JointDepartments {
		if !slices.ContainsFunc(c.SignOffs, func(s SignOff) bool { return s.Department == d }) {
			left = append(left, d)
		}
	}
	sort.Strings(left)
	return left
}

// resume restarts the case's clock if a supplement request stopped it.
func (c *Case) resume(at time.Time) {
	if c.PausedSince != nil {
		if d := at.Sub(*c.PausedSince); d > 0 {
			c.PausedSeconds += int64(d / time.Second)
		}
		c.PausedSince = nil
	}
}

// Validate checks what a step must carry.
func (r *StepRequest) Validate() error {
	var fe FieldErrors
	if !r.Step.Valid() {
		fe.add("step", "is not a step of a case's life")
	}
	checkText(&fe, "actor", r.Actor, MaxActor, true)
	checkText(&fe, "comment", r.Comment, MaxReason, false)
	checkText(&fe, "reason", r.Reason, MaxReason, r.Step == StepReject || r.Step == StepDeny)
	checkText(&fe, "legal_basis", r.LegalBasis, MaxReason, r.Step == StepReject)
	checkText(&fe, "exception", r.Exception, MaxReason, false)
	checkText(&fe, "department", r.Department, 64, r.Step == StepSignOff)
	checkText(&fe, "fee_line", r.FeeLine, 100, false)
	checkText(&fe, "payment_ref", r.PaymentRef, 128, r.Step == StepPay)
	if r.Step == StepExempt && strings.TrimSpace(r.Reason) == "" {
		fe.add("reason", "an exemption needs its reason")
	}
	if r.AmountFen < 0 || r.AmountFen > MaxFeeFen {
		fe.add("amount_fen", "0 to %d fen", int64(MaxFeeFen))
	}
	if r.Step == StepRequestSupplement {
		if len(r.Missing) == 0 {
			fe.add("missing", "name every missing material, at once (一次性告知)")
		}
		for i, m := range r.Missing {
			checkText(&fe, fmt.Sprintf("missing[%d]", i), m, 200, true)
		}
		if len(r.Missing) > MaxMaterials {
			fe.add("missing", "at most %d", MaxMaterials)
		}
	}
	if r.Step == StepSupplement {
		if len(r.Materials) == 0 {
			fe.add("materials", "name what was handed in")
		}
		if len(r.Materials) > MaxMaterials {
			fe.add("materials", "at most %d", MaxMaterials)
		}
		for i, m := range r.Materials {
			checkText(&fe, fmt.Sprintf("materials[%d].name", i), m.Name, 200, true)
		}
	}
	if r.At.IsZero() {
		fe.add("at", "the step's time is required")
	}
	if utf8.RuneCountInString(r.Role) > 32 {
		fe.add("role", "at most 32 characters")
	}
	if len(fe) > 0 {
		return fe
	}
	return nil
}
