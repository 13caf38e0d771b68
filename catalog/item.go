package catalog

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/tier"
)

// Item is one item of the catalogue (事项) with its seven publics (七公开): what it is and its
// legal basis, the conditions, the materials, the procedure, the time limits and the fees, and
// where it is accepted and decided.
type Item struct {
	// Code identifies the item across the grid ("MZ-001"): letters, digits, '-', '_' and '.',
	// kept in upper case. Cases name their item by it.
	Code   string `json:"code"`
	Name   string `json:"name"`
	NameEN string `json:"name_en,omitempty"`
	// Department is the code of the department responsible (Department.Code).
	Department string   `json:"department"`
	Type       ItemType `json:"type"`
	Mode       Mode     `json:"mode"`
	// JointDepartments are the departments that sign off a joint (联办) item, besides its own.
	JointDepartments []string `json:"joint_departments,omitempty"`
	// AcceptTiers are the tiers whose sites take applications for the item; DecideTier decides
	// it (a case accepted lower climbs there by itself).
	AcceptTiers []tier.Tier `json:"accept_tiers"`
	DecideTier  tier.Tier   `json:"decide_tier"`
	LegalBasis  string      `json:"legal_basis,omitempty"`
	Conditions  string      `json:"conditions,omitempty"`
	Materials   []Material  `json:"materials"`
	Steps       []Step      `json:"steps"`
	// StatutoryLimit is the limit the law sets, PromisedLimit the one the centre promises
	// (never longer).
	StatutoryLimit Limit `json:"statutory_limit"`
	PromisedLimit  Limit `json:"promised_limit"`
	// Fees are the charges, each with its standard and basis; none means free of charge.
	Fees []Fee `json:"fees,omitempty"`
}

// ItemType is the legal kind of an item.
type ItemType string

// The item types.
const (
	TypeLicence     ItemType = "administrative_licence" // 行政许可
	TypePublic      ItemType = "public_service"         // 公共服务
	TypeConvenience ItemType = "convenience_service"    // 便民服务
)

// Types lists the item types in display order.
var Types = []ItemType{TypeLicence, TypePublic, TypeConvenience}

// Label is the type's name in Chinese.
func (t ItemType) Label() string {
	switch t {
	case TypeLicence:
		return "行政许可"
	case TypePublic:
		return "公共服务"
	case TypeConvenience:
		return "便民服务"
	}
	return string(t)
}

// Mode is how an item is processed.
type Mode string

// The processing modes.
const (
	// ModeImmediate (即办): decided on the spot where it is accepted.
	ModeImmediate Mode = "immediate"
	// ModePromised (承诺): decided within the promised limit.
	ModePromised Mode = "promised"
	// ModeJoint (联办): needs a sign-off from each of the named departments.
	ModeJoint Mode = "joint"
	// ModeReported (上报): accepted below and decided by a higher tier.
	ModeReported Mode = "reported"
)

// Modes lists the processing modes in display order.
var Modes = []Mode{ModeImmediate, ModePromised, ModeJoint, ModeReported}

// Label is the mode's name in Chinese.
func (m Mode) Label() string {
	switch m {
	case ModeImmediate:
		return "即办"
	case ModePromised:
		return "承诺"
	case ModeJoint:
		return "联办"
	case ModeReported:
		return "上报"
	}
	return string(m)
}

// Material is one document an applicant hands in.
type Material struct {
	Name     string `json:"name"`
	NameEN   string `json:"name_en,omitempty"`
	Required bool   `json:"required"`
	Form     Form   `json:"form"`
	// Copies is how many of it are handed in (at least 1).
	Copies int `json:"copies"`
	// Template names the blank form to fill in, where there is one.
	Template string `json:"template,omitempty"`
	Note     string `json:"note,omitempty"`
}

// Form says whether a material is an original or a copy.
type Form string

// The forms of a material.
const (
	FormOriginal        Form = "original"          // 原件
	FormCopy            Form = "copy"              // 复印件
	FormOriginalAndCopy Form = "original_and_copy" // 原件及复印件
)

// Label is the form's name in Chinese.
func (f Form) Label() string {
	switch f {
	case FormOriginal:
		return "原件"
	case FormCopy:
		return "复印件"
	case FormOriginalAndCopy:
		return "原件及复印件"
	}
	return string(f)
}

// Step is one step of an item's procedure.
type Step struct {
	Name        string `json:"name"`
	NameEN      string `json:"name_en,omitempty"`
	Description string `json:"description,omitempty"`
}

// Limit is a time limit: working days, or hours for immediate items; zero hours and zero days
// means on the spot.
type Limit struct {
	WorkingDays int `json:"working_days,omitempty"`
	Hours       int `json:"hours,omitempty"`
}

// String reads the limit in Chinese: "5个工作日", "2小时", "当场办结".
func (l Limit) String() string {
	switch {
	case l.WorkingDays > 0:
		return fmt.Sprintf("%d个工作日", l.WorkingDays)
	case l.Hours > 0:
		return fmt.Sprintf("%d小时", l.Hours)
	}
	return "当场办结"
}

// hours orders limits: a working day counts as eight hours.
func (l Limit) hours() int { return l.WorkingDays*8 + l.Hours }

// Fee is one charge of an item, in fen (分) so that no amount is ever a float.
type Fee struct {
	Name string `json:"name"`
	// StandardFen is the charge per application, in fen.
	StandardFen int64 `json:"standard_fen"`
	// Basis is the document that sets the charge.
	Basis string `json:"basis"`
}

// Limits of the fields, in characters (runes).
const (
	MaxCode      = 32
	MaxName      = 100
	MaxText      = 4000
	MaxMaterials = 60
	MaxSteps     = 30
	MaxFees      = 20
	MaxCopies    = 20
	MaxDays      = 365
	MaxHours     = 72
	// MaxFeeFen is the largest charge a line may carry: one million yuan.
	MaxFeeFen = 100_000_000
)

// Normalize trims the text fields and puts the code in upper case; Validate expects it done.
func (it *Item) Normalize() {
	it.Code = NormalizeCode(it.Code)
	for _, s := range []*string{&it.Name, &it.NameEN, &it.Department, &it.LegalBasis, &it.Conditions} {
		*s = strings.TrimSpace(*s)
	}
	for i := range it.JointDepartments {
		it.JointDepartments[i] = strings.TrimSpace(it.JointDepartments[i])
	}
	for i := range it.Materials {
		m := &it.Materials[i]
		m.Name, m.NameEN, m.Template, m.Note = strings.TrimSpace(m.Name), strings.TrimSpace(m.NameEN), strings.TrimSpace(m.Template), strings.TrimSpace(m.Note)
	}
	for i := range it.Steps {
		s := &it.Steps[i]
		s.Name, s.NameEN, s.Description = strings.TrimSpace(s.Name), strings.TrimSpace(s.NameEN), strings.TrimSpace(s.Description)
	}
	for i := range it.Fees {
		f := &it.Fees[i]
		f.Name, f.Basis = strings.TrimSpace(f.Name), strings.TrimSpace(f.Basis)
	}
}

// NormalizeCode is the canonical form of an item code: trimmed, in upper case.
func NormalizeCode(code string) string { return strings.ToUpper(strings.TrimSpace(code)) }

// ValidateCode checks an item code.
func ValidateCode(code string) error {
	if code == "" || len(code) > MaxCode {
		return fmt.Errorf("1 to %d characters", MaxCode)
	}
	for _, r := range code {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("%q: only letters, digits, '-', '_' and '.'", code)
		}
	}
	return nil
}

// Validate checks the item against the catalogue's rules and returns every problem found, each
// naming its field. departments says which department codes exist (nil: not checked).
func (it *Item) Validate(departments map[string]bool) Problems {
	var p Problems
	add := func(field, format string, args ...any) {
		p = append(p, Problem{Item: it.Code, Field: field, Reason: fmt.Sprintf(format, args...)})
	}
	if err := ValidateCode(it.Code); err != nil {
		add("code", "%v", err)
	}
	text(add, "name", it.Name, MaxName, true)
	text(add, "name_en", it.NameEN, 2*MaxName, false)
	text(add, "legal_basis", it.LegalBasis, MaxText, it.Type == TypeLicence)
	text(add, "conditions", it.Conditions, MaxText, false)
	known := func(field, dept string) {
		if dept == "" {
			add(field, "required")
		} else if departments != nil && !departments[dept] {
			add(field, "no department %q in the catalogue", dept)
		}
	}
	known("department", it.Department)
	if !slices.Contains(Types, it.Type) {
		add("type", "%q: want administrative_licence, public_service or convenience_service", it.Type)
	}
	if !slices.Contains(Modes, it.Mode) {
		add("mode", "%q: want immediate, promised, joint or reported", it.Mode)
	}
	switch {
	case it.Mode == ModeJoint && len(it.JointDepartments) == 0:
		add("joint_departments", "a joint (联办) item names the departments that sign it off")
	case it.Mode != ModeJoint && len(it.JointDepartments) > 0:
		add("joint_departments", "only a joint (联办) item names other departments")
	}
	for i, d := range it.JointDepartments {
		f := fmt.Sprintf("joint_departments[%d]", i)
		known(f, d)
		if d == it.Department || slices.Index(it.JointDepartments, d) < i {
			add(f, "%q is named twice (the item's own department signs off anyway)", d)
		}
	}
	it.validateTiers(add)
	it.validateLimits(add)
	if len(it.Materials) > MaxMaterials {
		add("materials", "at most %d", MaxMaterials)
	}
	for i, m := range it.Materials {
		f := fmt.Sprintf("materials[%d]", i)
		text(add, f+".name", m.Name, MaxName, true)
		text(add, f+".name_en", m.NameEN, 2*MaxName, false)
		text(add, f+".template", m.Template, MaxName, false)
		text(add, f+".note", m.Note, MaxText, false)
		if !slices.Contains([]Form{FormOriginal, FormCopy, FormOriginalAndCopy}, m.Form) {
			add(f+".form", "%q: want original, copy or original_and_copy", m.Form)
		}
		if m.Copies < 1 || m.Copies > MaxCopies {
			add(f+".copies", "1 to %d", MaxCopies)
		}
		for _, o := range it.Materials[:i] {
			if m.Name != "" && o.Name == m.Name {
				add(f+".name", "%q is listed twice", m.Name)
			}
		}
	}
	if len(it.Steps) == 0 || len(it.Steps) > MaxSteps {
		add("steps", "1 to %d steps", MaxSteps)
	}
	for i, s := range it.Steps {
		f := fmt.Sprintf("steps[%d]", i)
		text(add, f+".name", s.Name, MaxName, true)
		text(add, f+".name_en", s.NameEN, 2*MaxName, false)
		text(add, f+".description", s.Description, MaxText, false)
	}
	if len(it.Fees) > MaxFees {
		add("fees", "at most %d", MaxFees)
	}
	for i, fee := range it.Fees {
		f := fmt.Sprintf("fees[%d]", i)
		text(add, f+".name", fee.Name, MaxName, true)
		text(add, f+".basis", fee.Basis, MaxText, fee.StandardFen > 0)
		if fee.StandardFen < 0 || fee.StandardFen > MaxFeeFen {
			add(f+".standard_fen", "0 to %d fen", MaxFeeFen)
		}
	}
	return p
}

func (it *Item) validateTiers(add func(field, format string, args ...any)) {
	decide, err := tier.Parse(string(it.DecideTier))
	if err != nil {
		add("decide_tier", "%v", err)
	}
	if len(it.AcceptTiers) == 0 {
		add("accept_tiers", "at least one tier accepts the item")
	}
	for i, t := range it.AcceptTiers {
		f := fmt.Sprintf("accept_tiers[%d]", i)
		switch _, err := tier.Parse(string(t)); {
		case err != nil:
			add(f, "%v", err)
		case slices.Index(it.AcceptTiers, t) < i:
			add(f, "%s is named twice", t)
		case decide != "" && t.Level() < decide.Level():
			add(f, "%s is above the deciding tier %s: a case climbs up to be decided, never down", t, decide)
		case decide != "" && it.Mode == ModeImmediate && t != decide:
			add(f, "an immediate (即办) item is decided where it is accepted: %s is not the deciding tier %s", t, decide)
		}
	}
	if decide != "" && it.Mode == ModeReported && slices.Contains(it.AcceptTiers, decide) {
		add("accept_tiers", "a reported (上报) item is accepted below the tier that decides it (%s)", decide)
	}
}

func (it *Item) validateLimits(add func(field, format string, args ...any)) {
	for _, l := range []struct {
		field string
		limit Limit
	}{{"statutory_limit", it.StatutoryLimit}, {"promised_limit", it.PromisedLimit}} {
		switch {
		case l.limit.WorkingDays < 0 || l.limit.WorkingDays > MaxDays:
			add(l.field+".working_days", "0 to %d", MaxDays)
		case l.limit.Hours < 0 || l.limit.Hours > MaxHours:
			add(l.field+".hours", "0 to %d", MaxHours)
		case l.limit.WorkingDays > 0 && l.limit.Hours > 0:
			add(l.field, "working days or hours, not both")
		case it.Mode == ModeImmediate && l.limit.WorkingDays > 0:
			add(l.field, "an immediate (即办) item is done within hours, not working days")
		case it.Mode != ModeImmediate && it.Mode != "" && l.limit.WorkingDays == 0:
			add(l.field+".working_days", "a %s item has a limit in working days", it.Mode)
		}
	}
	if it.PromisedLimit.hours() > it.StatutoryLimit.hours() {
		add("promised_limit", "the promised limit (%s) is longer than the statutory one (%s)", it.PromisedLimit, it.StatutoryLimit)
	}
}

// text checks a text field's length in characters and, if required, that it is there.
func text(add func(field, format string, args ...any), field, s string, max int, required bool) {
	switch {
	case s == "" && required:
		add(field, "required")
	case len(s) > max && utf8.RuneCountInString(s) > max:
		add(field, "at most %d characters", max)
	case !utf8.ValidString(s):
		add(field, "not valid UTF-8")
	}
}

// TotalFen is the sum of the item's fees, in fen.
func (it *Item) TotalFen() int64 {
	var sum int64
	for _, f := range it.Fees {
		sum += f.StandardFen
	}
	return sum
}

// AcceptedAt says whether a site of tier t takes applications for the item.
func (it *Item) AcceptedAt(t tier.Tier) bool { return slices.Contains(it.AcceptTiers, t) }

// Rules is what a case's life needs of the item (casework.ItemRules): its mode, its joint
// departments, the names of its required materials and the tier that decides it.
func (it *Item) Rules() casework.ItemRules {
	r := casework.ItemRules{Mode: casework.Mode(it.Mode), JointDepartments: it.JointDepartments, DecideTier: string(it.DecideTier)}
	for _, m := range it.Materials {
		if m.Required {
			r.RequiredMaterials = append(r.RequiredMaterials, m.Name)
		}
	}
	for _, f := range it.Fees {
		r.Fees = append(r.Fees, casework.Fee{Name: f.Name, StandardFen: f.StandardFen, Basis: f.Basis})
	}
	return r
}
