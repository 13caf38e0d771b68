package casework

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)

// lifeCase is a case taken in and decided at the district (cd), collected there.
func lifeCase(t *testing.T) *Case {
	t.Helper()
	sub := &Submission{Kind: KindApplication, ItemCode: "MZ-001", Title: "最低生活保障申请",
		Applicant: &Applicant{Name: "李梅", IDNumber: "630102198506151227", Phone: "13909710001"},
		Materials: []Material{{Name: "居民身份证"}}, DecideTier: "district"}
	c, err := Accept(sub, Acceptance{Number: "cd-20261203-000001", Site: "cd", At: t0})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// step is a valid request for s by actor at the district, a minute after the case's last event.
func step(c *Case, s Step, actor string) StepRequest {
	r := StepRequest{Step: s, Actor: actor, Role: "officer", Site: "cd", SiteTier: "district",
		At: c.UpdatedAt.Add(time.Minute)}
	switch s {
	case StepReject:
		r.Reason, r.LegalBasis = "不属于本事项受理范围", "《社会救助暂行办法》第十一条"
	case StepDeny:
		r.Reason = "家庭人均收入高于当地低保标准"
	case StepRequestSupplement:
		r.Missing = []string{"户口簿", "收入证明"}
	case StepSupplement:
		r.Materials = []Material{{Name: "户口簿", Pages: 2}, {Name: "收入证明", Pages: 1}}
	case StepSignOff:
		r.Department = "rs"
	case StepCharge:
		r.AmountFen = 1000
	case StepExempt:
		r.Reason = "低保对象免收"
	case StepPay:
		r.AmountFen, r.PaymentRef = 1000, "pay-2026-0001"
	}
	return r
}

// paths walk a new case to each status, each step by the actor named (review and approve by two
// people).
var paths = map[Status][]Step{
	StatusSubmitted:           nil,
	StatusSupplementRequested: {StepRequestSupplement},
	StatusNotAccepted:         {StepReject},
	StatusAccepted:            {StepAccept},
	StatusProcessing:          {StepAccept, StepProcess},
	StatusReviewed:            {StepAccept, StepProcess, StepReview},
	StatusApproved:            {StepAccept, StepProcess, StepReview, StepApprove},
	StatusDenied:              {StepAccept, StepProcess, StepReview, StepDeny},
	StatusCompleted:           {StepAccept, StepProcess, StepReview, StepApprove, StepComplete},
	StatusCertificateIssued:   {StepAccept, StepProcess, StepReview, StepApprove, StepComplete, StepIssueCertificate},
	StatusDelivered:           {StepAccept, StepProcess, StepReview, StepApprove, StepComplete, StepDeliver},
	StatusWithdrawn:           {StepWithdraw},
}

func actorOf(s Step) string {
	if s == StepReview {
		return "审核人 (reviewer.a)"
	}
	return "核准人 (approver.b)"
}

func walk(t *testing.T, to Status, rules ItemRules) *Case {
	t.Helper()
	c := lifeCase(t)
	for _, s := range paths[to] {
		if err := c.Take(step(c, s, actorOf(s)), rules); err != nil {
			t.Fatalf("walking to %s: %s: %v", to, s, err)
		}
	}
	if c.Status != to {
		t.Fatalf("walked to %s, got %s", to, c.Status)
	}
	return c
}

// TestEveryStepFromEveryStatus: from each status, exactly the steps of the machine's table are
// allowed; every other answers a StepError naming the status and the steps allowed now, and
// changes nothing.
func TestEveryStepFromEveryStatus(t *testing.T) {
	promised := ItemRules{Mode: ModePromised, DecideTier: "district"}
	immediate := ItemRules{Mode: ModeImmediate, DecideTier: "district"}
	want := map[Status]map[Step]Status{
		StatusSubmitted:           {StepAccept: StatusAccepted, StepReject: StatusNotAccepted, StepRequestSupplement: StatusSupplementRequested, StepWithdraw: StatusWithdrawn},
		StatusSupplementRequested: {StepSupplement: StatusSubmitted, StepReject: StatusNotAccepted, StepWithdraw: StatusWithdrawn},
		StatusNotAccepted:         {},
		StatusAccepted:            {StepProcess: StatusProcessing, StepWithdraw: StatusWithdrawn}, // complete: immediate items only
		StatusProcessing:          {StepReview: StatusReviewed, StepWithdraw: StatusWithdrawn},    // sign-off: joint items only
		StatusReviewed:            {StepApprove: StatusApproved, StepDeny: StatusDenied, StepWithdraw: StatusWithdrawn},
		StatusApproved:            {StepComplete: StatusCompleted},
		StatusDenied:              {StepComplete: StatusCompleted},
		StatusCompleted:           {StepIssueCertificate: StatusCertificateIssued, StepDeliver: StatusDelivered},
		StatusCertificateIssued:   {},
		StatusDelivered:           {},
		StatusWithdrawn:           {},
	}
	for from, allowed := range want {
		for _, s := range Steps {
			t.Run(fmt.Sprintf("%s/%s", from, s), func(t *testing.T) {
				c := walk(t, from, promised)
				before, _ := json.Marshal(c)
				err := c.Take(step(c, s, "核准人 (approver.b)"), promised)
				if to, ok := allowed[s]; ok {
					if err != nil {
						t.Fatalf("allowed step refused: %v", err)
					}
					if c.Status != to || c.History[len(c.History)-1].Type != stepEvents[s] {
						t.Fatalf("now %s (event %s), want %s", c.Status, c.History[len(c.History)-1].Type, to)
					}
					if err := c.VerifyHistory(); err != nil {
						t.Fatal(err)
					}
					return
				}
				if err == nil {
					t.Fatalf("forbidden step taken: now %s", c.Status)
				}
				var se *StepError
				var ce *ConflictError
				if !errors.As(err, &se) && !errors.As(err, &ce) {
					t.Fatalf("refused with %T %v, want a StepError or a conflict", err, err)
				}
				if se != nil && (se.Status != from || !strings.Contains(err.Error(), string(from))) {
					t.Fatalf("the refusal does not name the status: %v", err)
				}
				if after, _ := json.Marshal(c); string(after) != string(before) {
					t.Fatalf("a refused step changed the case")
				}
			})
		}
	}
	// The table's allowed steps are what the error names.
	c := walk(t, StatusReviewed, promised)
	err := c.Take(step(c, StepIssueCertificate, "x"), promised)
	if err == nil || !strings.Contains(err.Error(), "allowed now: approve, deny, withdraw") {
		t.Fatalf("the refusal lists %v", err)
	}
	// An immediate item completes at acceptance, approved.
	c = walk(t, StatusAccepted, immediate)
	if err := c.Take(step(c, StepComplete, "窗口 (clerk)"), immediate); err != nil || c.Status != StatusCompleted || c.Decision != DecisionApproved {
		t.Fatalf("immediate completion: %v, %s %s", err, c.Status, c.Decision)
	}
}

func TestMaterialsAtAcceptance(t *testing.T) {
	rules := ItemRules{Mode: ModePromised, DecideTier: "district", RequiredMaterials: []string{"居民身份证", "户口簿", "收入证明"}}
	c := lifeCase(t)
	err := c.Take(step(c, StepAccept, "王芳 (wang.fang)"), rules)
	var ce *ConflictError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "户口簿、收入证明") {
		t.Fatalf("acceptance with materials missing: %v", err)
	}
	// The one-time notice names them all; the clock stops until they are handed in.
	if err := c.Take(step(c, StepRequestSupplement, "王芳 (wang.fang)"), rules); err != nil {
		t.Fatal(err)
	}
	if c.PausedSince == nil || !slices.Equal(c.Missing, []string{"户口簿", "收入证明"}) {
		t.Fatalf("supplement requested: paused %v, missing %v", c.PausedSince, c.Missing)
	}
	sup := step(c, StepSupplement, "王芳 (wang.fang)")
	sup.At = c.PausedSince.Add(3 * 24 * time.Hour)
	if err := c.Take(sup, rules); err != nil {
		t.Fatal(err)
	}
	if c.PausedSince != nil || c.PausedSeconds != 3*24*3600 || c.Missing != nil || c.Status != StatusSubmitted {
		t.Fatalf("after the supplement: paused %v for %d s, missing %v, %s", c.PausedSince, c.PausedSeconds, c.Missing, c.Status)
	}
	if err := c.Take(step(c, StepAccept, "王芳 (wang.fang)"), rules); err != nil {
		t.Fatalf("acceptance with every material: %v", err)
	}
	// An exception with its reason accepts with a material missing, and says so in the history.
	rules.RequiredMaterials = append(rules.RequiredMaterials, "残疾证")
	c = lifeCase(t)
	c.Materials = append(c.Materials, Material{Name: "户口簿"}, Material{Name: "收入证明"})
	r := step(c, StepAccept, "王芳 (wang.fang)")
	r.Exception = "申请人残疾证在补办中，承诺五日内补交"
	if err := c.Take(r, rules); err != nil || !strings.Contains(c.History[len(c.History)-1].Note, "残疾证") {
		t.Fatalf("acceptance with an exception: %v %q", err, c.History[len(c.History)-1].Note)
	}
}

func TestReviewAndApprovalByTwoPeople(t *testing.T) {
	rules := ItemRules{Mode: ModePromised, DecideTier: "district"}
	c := walk(t, StatusProcessing, rules)
	if err := c.Take(step(c, StepReview, "张审 (zhang)"), rules); err != nil {
		t.Fatal(err)
	}
	for _, s := range []Step{StepApprove, StepDeny} {
		err := c.Take(step(c, s, "张审 (zhang)"), rules)
		if err == nil || !strings.Contains(err.Error(), "一审一核") {
			t.Fatalf("the reviewer's %s: %v", s, err)
		}
	}
	if err := c.Take(step(c, StepApprove, "李核 (li)"), rules); err != nil || c.Decision != DecisionApproved {
		t.Fatalf("another's approval: %v", err)
	}
	if e := c.History[len(c.History)-1]; e.Actor != "李核 (li)" || e.Role != "officer" || e.FromStatus != StatusReviewed {
		t.Fatalf("the approval's event %+v", e)
	}
}

func TestJointItemNeedsEverySignOff(t *testing.T) {
	rules := ItemRules{Mode: ModeJoint, DecideTier: "district", JointDepartments: []string{"rs", "mz"}}
	c := walk(t, StatusApproved, rules)
	if err := c.Take(step(c, StepComplete, "x (x)"), rules); err == nil || !strings.Contains(err.Error(), "mz, rs") {
		t.Fatalf("completion without sign-offs: %v", err)
	}
	if err := c.Take(step(c, StepSignOff, "人社 (rs.officer)"), rules); err != nil {
		t.Fatal(err)
	}
	if err := c.Take(step(c, StepSignOff, "人社 (rs.officer)"), rules); err == nil {
		t.Fatal("a second sign-off of one department taken")
	}
	r := step(c, StepSignOff, "民政 (mz.officer)")
	r.Department = "jy"
	if err := c.Take(r, rules); err == nil {
		t.Fatal("a sign-off by a department not named taken")
	}
	r.Department = "mz"
	if err := c.Take(r, rules); err != nil {
		t.Fatal(err)
	}
	if err := c.Take(step(c, StepComplete, "x (x)"), rules); err != nil || c.Status != StatusCompleted {
		t.Fatalf("completion after every sign-off: %v", err)
	}
}

func TestStepsHappenAtTheirPlace(t *testing.T) {
	rules := ItemRules{Mode: ModePromised, DecideTier: "district"}
	c := walk(t, StatusAccepted, rules)
	r := step(c, StepProcess, "x (x)")
	r.Site, r.SiteTier = "cd-dgdj", "township"
	if err := c.Take(r, rules); err == nil || !strings.Contains(err.Error(), "deciding site") {
		t.Fatalf("processing at a township: %v", err)
	}
	c = lifeCase(t)
	r = step(c, StepAccept, "x (x)")
	r.Site = "cd-dgdj-ngj"
	if err := c.Take(r, rules); err == nil || !strings.Contains(err.Error(), "held: cd") {
		t.Fatalf("acceptance away from the holder: %v", err)
	}
	c = walk(t, StatusCompleted, rules)
	c.CollectSite = "cd-dgdj-ngj"
	if err := c.Take(step(c, StepIssueCertificate, "x (x)"), rules); err == nil || !strings.Contains(err.Error(), "cd-dgdj-ngj") {
		t.Fatalf("a certificate away from the collection site: %v", err)
	}
	// A denied case has no certificate.
	c = walk(t, StatusDenied, rules)
	_ = c.Take(step(c, StepComplete, "x (x)"), rules)
	if err := c.Take(step(c, StepIssueCertificate, "x (x)"), rules); err == nil {
		t.Fatal("a certificate for a denied case")
	}
	// A case in transit takes no step.
	c = lifeCase(t)
	c.Transit = &Transit{To: "cd-dgdj", Move: MoveHandDown}
	if err := c.Take(step(c, StepAccept, "x (x)"), rules); err == nil {
		t.Fatal("a step on a case in transit")
	}
}

func TestStepRequestsAreChecked(t *testing.T) {
	c := lifeCase(t)
	for _, bad := range []StepRequest{
		{Step: "approve-all", Actor: "x", At: t0},
		{Step: StepReject, Actor: "x", At: t0, Reason: "理由"}, // no legal basis
		{Step: StepRequestSupplement, Actor: "x", At: t0},    // nothing named
		{Step: StepAccept, At: t0},                           // nobody
		{Step: StepAccept, Actor: "x"},                       // no time
	} {
		var fe FieldErrors
		if err := c.Take(bad, ItemRules{}); !errors.As(err, &fe) {
			t.Errorf("%+v: %v, want field errors", bad, err)
		}
	}
}

// TestOneBill: the item's fee lines become the case's one bill at acceptance, in fen; a charge
// other than the standard needs a reason and is marked; an exemption needs its reason; the bill
// is paid whole, once, with a reference; the certificate waits for it.
func TestOneBill(t *testing.T) {
	rules := ItemRules{Mode: ModeImmediate, Fees: []Fee{
		{Name: "工本费", StandardFen: 1000, Basis: "《居民身份证法》"},
		{Name: "快递费", StandardFen: 1250, Basis: "自愿选择"},
	}}
	c := lifeCase(t)
	if err := c.Take(step(c, StepAccept, "王芳 (clerk)"), rules); err != nil {
		t.Fatal(err)
	}
	if c.Bill == nil || len(c.Bill.Lines) != 2 || c.Bill.TotalFen != 2250 || c.Bill.Owes() != true {
		t.Fatalf("the bill at acceptance: %+v", c.Bill)
	}
	r := step(c, StepCharge, "李明 (officer)")
	r.FeeLine, r.AmountFen = "快递费", 800
	if err := c.Take(r, rules); err == nil || !strings.Contains(err.Error(), "reason") {
		t.Fatalf("an adjusted charge without a reason: %v", err)
	}
	r.Reason = "同城快递优惠"
	if err := c.Take(r, rules); err != nil {
		t.Fatal(err)
	}
	if l := c.Bill.Lines[1]; !l.Adjusted || l.ChargedFen != 800 || c.Bill.TotalFen != 1800 {
		t.Fatalf("after the adjusted charge: %+v, total %d", l, c.Bill.TotalFen)
	}
	r = step(c, StepExempt, "李明 (officer)")
	r.FeeLine = "工本费"
	if err := c.Take(r, rules); err != nil || c.Bill.TotalFen != 800 {
		t.Fatalf("exemption: %v, total %d", err, c.Bill.TotalFen)
	}
	if err := c.Take(step(c, StepComplete, "李明 (officer)"), rules); err != nil {
		t.Fatal(err)
	}
	if err := c.Take(step(c, StepIssueCertificate, "王芳 (clerk)"), rules); err == nil || !strings.Contains(err.Error(), "¥8.00") {
		t.Fatalf("a certificate with the bill unpaid: %v", err)
	}
	pay := step(c, StepPay, "王芳 (clerk)")
	pay.AmountFen = 500
	if err := c.Take(pay, rules); err == nil || !strings.Contains(err.Error(), "pay it whole") {
		t.Fatalf("a part payment: %v", err)
	}
	pay.AmountFen = 800
	if err := c.Take(pay, rules); err != nil || !c.Bill.Paid || c.Bill.PaymentRef != "pay-2026-0001" {
		t.Fatalf("payment: %v %+v", err, c.Bill)
	}
	if err := c.Take(pay, rules); err == nil {
		t.Fatal("a second payment taken")
	}
	if err := c.Take(step(c, StepIssueCertificate, "王芳 (clerk)"), rules); err != nil {
		t.Fatalf("the certificate once paid: %v", err)
	}
	if err := c.VerifyHistory(); err != nil {
		t.Fatal(err)
	}
	if Yuan(123456) != "¥1234.56" || Yuan(5) != "¥0.05" {
		t.Errorf("Yuan: %s %s", Yuan(123456), Yuan(5))
	}
}

func TestStepsAtFollowTheStatusThePlaceAndTheReviewer(t *testing.T) {
	rules := ItemRules{Mode: ModePromised, DecideTier: "district"}
	c := walk(t, StatusReviewed, rules)
	if got := c.StepsAt(rules, "cd", "district", "核准人 (approver.b)"); !slices.Equal(got, []Step{StepApprove, StepDeny, StepWithdraw}) {
		t.Errorf("an approver at the district: %v", got)
	}
	if got := c.StepsAt(rules, "cd", "district", "审核人 (reviewer.a)"); !slices.Equal(got, []Step{StepWithdraw}) {
		t.Errorf("the reviewer at the district: %v", got)
	}
	if got := c.StepsAt(rules, "cd-dgdj", "township", "x"); len(got) != 0 {
		t.Errorf("a township, where the case is not: %v", got)
	}
}
