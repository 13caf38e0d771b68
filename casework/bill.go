package casework

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// One bill per case (一单式收费): the item's fee lines, made when the case is accepted, in fen
// (never floats). A line charged at other than the catalogue's standard needs a reason and is
// marked; a line (or the whole bill) may be exempted, with a reason; the bill is paid once, with
// the payment's reference. A certificate is issued only once the bill is paid (or owes nothing).

// Fee is one of an item's fee lines as the catalogue states it.
type Fee struct {
	Name        string `json:"name"`
	StandardFen int64  `json:"standard_fen"`
	Basis       string `json:"basis,omitempty"`
}

// FeeLine is one line of a case's bill.
type FeeLine struct {
	Name        string `json:"name"`
	StandardFen int64  `json:"standard_fen"`
	ChargedFen  int64  `json:"charged_fen"`
	Basis       string `json:"basis,omitempty"`
	// Adjusted marks a charge other than the standard; Reason says why.
	Adjusted bool   `json:"adjusted,omitempty"`
	Reason   string `json:"reason,omitempty"`
	// Exempt lines are not owed; ExemptReason says why (减免).
	Exempt       bool   `json:"exempt,omitempty"`
	ExemptReason string `json:"exempt_reason,omitempty"`
}

// Bill is a case's one bill.
type Bill struct {
	Lines []FeeLine `json:"lines"`
	// TotalFen is what is owed: the charged lines that are not exempt.
	TotalFen   int64      `json:"total_fen"`
	Paid       bool       `json:"paid,omitempty"`
	PaymentRef string     `json:"payment_ref,omitempty"`
	PaidAt     *time.Time `json:"paid_at,omitempty"`
}

// MaxFeeFen bounds a line's charge: 100 million yuan.
const MaxFeeFen = 10_000_000_000

// newBill makes the bill of an item's fees.
func newBill(fees []Fee) *Bill {
	b := &Bill{Lines: make([]FeeLine, len(fees))}
	for i, f := range fees {
		b.Lines[i] = FeeLine{Name: f.Name, StandardFen: f.StandardFen, ChargedFen: f.StandardFen, Basis: f.Basis}
	}
	b.total()
	return b
}

func (b *Bill) total() {
	b.TotalFen = 0
	for _, l := range b.Lines {
		if !l.Exempt {
			b.TotalFen += l.ChargedFen
		}
	}
}

// Owes says whether the bill has something left to pay.
func (b *Bill) Owes() bool { return b != nil && !b.Paid && b.TotalFen > 0 }

// line finds the bill's line named name ("" for the only line).
func (b *Bill) line(name string) (*FeeLine, error) {
	if b == nil || len(b.Lines) == 0 {
		return nil, conflictf("the case's bill has no fee lines")
	}
	if name == "" && len(b.Lines) == 1 {
		return &b.Lines[0], nil
	}
	i := slices.IndexFunc(b.Lines, func(l FeeLine) bool { return l.Name == name })
	if i < 0 {
		names := make([]string, len(b.Lines))
		for j, l := range b.Lines {
			names[j] = l.Name
		}
		return nil, conflictf("the bill has no line %q (lines: %s)", name, strings.Join(names, "、"))
	}
	return &b.Lines[i], nil
}

// charge sets a line's amount: a charge other than the standard needs a reason and is marked.
func (b *Bill) charge(r StepRequest) (string, error) {
	if b.Paid {
		return "", conflictf("the bill is paid (%s): it no longer changes", b.PaymentRef)
	}
	l, err := b.line(r.FeeLine)
	if err != nil {
		return "", err
	}
	if r.AmountFen != l.StandardFen && r.Reason == "" {
		return "", FieldErrors{{Field: "reason", Reason: fmt.Sprintf("a charge other than the standard %s needs a reason", Yuan(l.StandardFen))}}
	}
	l.ChargedFen, l.Adjusted, l.Reason = r.AmountFen, r.AmountFen != l.StandardFen, r.Reason
	b.total()
	return fmt.Sprintf("收费 %s: %s (标准 %s)", l.Name, Yuan(l.ChargedFen), Yuan(l.StandardFen)), nil
}

// exempt waives a line (or, with no line named and several lines, the whole bill).
func (b *Bill) exempt(r StepRequest) (string, error) {
	if b.Paid {
		return "", conflictf("the bill is paid (%s): it no longer changes", b.PaymentRef)
	}
	if r.FeeLine == "" && b != nil && len(b.Lines) > 1 {
		for i := range b.Lines {
			b.Lines[i].Exempt, b.Lines[i].ExemptReason = true, r.Reason
		}
		b.total()
		return "减免全部费用 all fees exempted", nil
	}
	l, err := b.line(r.FeeLine)
	if err != nil {
		return "", err
	}
	l.Exempt, l.ExemptReason = true, r.Reason
	b.total()
	return "减免 " + l.Name, nil
}

// pay records the payment of what the bill owes.
func (b *Bill) pay(r StepRequest) (string, error) {
	switch {
	case b == nil || b.TotalFen == 0:
		return "", conflictf("the case owes nothing")
	case b.Paid:
		return "", conflictf("the bill is paid already (%s)", b.PaymentRef)
	case r.AmountFen != b.TotalFen:
		return "", conflictf("the bill is %s, not %s: pay it whole (一单式收费)", Yuan(b.TotalFen), Yuan(r.AmountFen))
	}
	at := r.At
	b.Paid, b.PaymentRef, b.PaidAt = true, r.PaymentRef, &at
	return fmt.Sprintf("缴费 paid %s, 凭证 %s", Yuan(b.TotalFen), r.PaymentRef), nil
}

// Yuan formats fen as yuan: "¥12.50".
func Yuan(fen int64) string {
	sign := ""
	if fen < 0 {
		sign, fen = "-", -fen
	}
	return fmt.Sprintf("%s¥%d.%02d", sign, fen/100, fen%100)
}
