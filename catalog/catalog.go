// Package catalog is the catalogue of items a district's grid accepts (事项目录): each item with its
// seven publics (七公开), the departments that own them, the rules an item must satisfy, search,
// the one-time notice (一次性告知) and the catalogue's files (JSON and CSV) with every problem
// named by line. It is pure: no I/O but the readers and writers it is given, no clock.
//
// The grid stores the catalogue as configuration documents (node/catalog.go): the district's
// items reach every site, a township's local convenience items its own subtree.
package catalog

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/govgrid/govgrid/tier"
)

// Department is a department of the district's centre (窗口部门).
type Department struct {
	Code   string `json:"code"`
	Name   string `json:"name"`
	NameEN string `json:"name_en,omitempty"`
}

// Validate checks a department.
func (d *Department) Validate() Problems {
	var p Problems
	add := func(field, format string, args ...any) {
		p = append(p, Problem{Item: d.Code, Field: field, Reason: fmt.Sprintf(format, args...)})
	}
	if err := ValidateCode(d.Code); err != nil {
		add("code", "%v", err)
	}
	text(add, "name", d.Name, MaxName, true)
	text(add, "name_en", d.NameEN, 2*MaxName, false)
	return p
}

// File is a catalogue as imported and exported: departments and items.
type File struct {
	Departments []Department `json:"departments"`
	Items       []Item       `json:"items"`
}

// Validate checks every department and item of the file, and that each item's departments are
// the file's or among known (the grid's). Problems carry the line each was read from, if any.
func (f *File) Validate(known map[string]bool, lines *Lines) Problems {
	var p Problems
	depts := map[string]bool{}
	for code := range known {
		depts[code] = true
	}
	seen := map[string]bool{}
	for i := range f.Departments {
		d := &f.Departments[i]
		d.Code = NormalizeCode(d.Code)
		d.Name, d.NameEN = strings.TrimSpace(d.Name), strings.TrimSpace(d.NameEN)
		dp := d.Validate()
		if seen[d.Code] {
			dp = append(dp, Problem{Item: d.Code, Field: "code", Reason: "department listed twice"})
		}
		seen[d.Code] = true
		depts[d.Code] = true
		p = append(p, lines.at(lines.department(i), dp)...)
	}
	items := map[string]bool{}
	for i := range f.Items {
		it := &f.Items[i]
		it.Normalize()
		ip := it.Validate(depts)
		if items[it.Code] {
			ip = append(ip, Problem{Item: it.Code, Field: "code", Reason: "item listed twice"})
		}
		items[it.Code] = true
		p = append(p, lines.at(lines.item(i), ip)...)
	}
	return p
}

// Problem is one thing wrong with a catalogue entry: where (line of its file, if read from one),
// which item or department, which field, and why.
type Problem struct {
	Line   int    `json:"line,omitempty"`
	Item   string `json:"item,omitempty"`
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

func (p Problem) String() string {
	var b strings.Builder
	if p.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Item != "" {
		fmt.Fprintf(&b, "%s: ", p.Item)
	}
	fmt.Fprintf(&b, "%s: %s", p.Field, p.Reason)
	return b.String()
}

// Problems is every problem found; it is an error when not empty.
type Problems []Problem

func (ps Problems) Error() string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = p.String()
	}
	return "invalid catalogue: " + strings.Join(parts, "; ")
}

// Err is ps as an error, or nil when there is none.
func (ps Problems) Err() error {
	if len(ps) == 0 {
		return nil
	}
	return ps
}

// Lines records where a file's entries began, for Problems to name.
type Lines struct {
	Departments []int
	Items       []int
}

func (l *Lines) department(i int) int {
	if l == nil || i >= len(l.Departments) {
		return 0
	}
	return l.Departments[i]
}

func (l *Lines) item(i int) int {
	if l == nil || i >= len(l.Items) {
		return 0
	}
	return l.Items[i]
}

func (l *Lines) at(line int, ps Problems) Problems {
	for i := range ps {
		if ps[i].Line == 0 {
			ps[i].Line = line
		}
	}
	return ps
}

// Entry is an item as a site has it: the item, which site owns it (the district, or a township
// for its subtree), its version and when it last changed.
type Entry struct {
	Item
	Owner     string    `json:"owner"`
	Version   uint64    `json:"version"`
	UpdatedAt time.Time `json:"updated_at"`
	// DepartmentName is the department's name, for listings.
	DepartmentName   string `json:"department_name,omitempty"`
	DepartmentNameEN string `json:"department_name_en,omitempty"`
}

// Catalog is the catalogue in force at a site: its departments and items, in code order.
type Catalog struct {
	Departments []Department `json:"departments"`
	Items       []Entry      `json:"items"`
}

// New orders the departments and items and names each item's department.
func New(depts []Department, items []Entry) *Catalog {
	c := &Catalog{Departments: slices.Clone(depts), Items: slices.Clone(items)}
	sort.Slice(c.Departments, func(i, j int) bool { return c.Departments[i].Code < c.Departments[j].Code })
	sort.Slice(c.Items, func(i, j int) bool { return c.Items[i].Code < c.Items[j].Code })
	for i := range c.Items {
		if d, ok := c.Department(c.Items[i].Department); ok {
			c.Items[i].DepartmentName, c.Items[i].DepartmentNameEN = d.Name, d.NameEN
		}
	}
	return c
}

// Department returns the department with code.
func (c *Catalog) Department(code string) (Department, bool) {
	i := sort.Search(len(c.Departments), func(i int) bool { return c.Departments[i].Code >= code })
	if i < len(c.Departments) && c.Departments[i].Code == code {
		return c.Departments[i], true
	}
	return Department{}, false
}

// DepartmentCodes is the set of the catalogue's department codes.
func (c *Catalog) DepartmentCodes() map[string]bool {
	out := make(map[string]bool, len(c.Departments))
	for _, d := range c.Departments {
		out[d.Code] = true
	}
	return out
}

// Item returns the item with code (in any case).
func (c *Catalog) Item(code string) (*Entry, bool) {
	code = NormalizeCode(code)
	i := sort.Search(len(c.Items), func(i int) bool { return c.Items[i].Code >= code })
	if i < len(c.Items) && c.Items[i].Code == code {
		return &c.Items[i], true
	}
	return nil, false
}

// Query selects items. Empty fields select everything.
type Query struct {
	// Text matches the code, the Chinese or English name, or the department's name, ignoring
	// case.
	Text       string
	Department string
	// Tier selects the items accepted at that tier.
	Tier tier.Tier
	Mode Mode
	Type ItemType
	// After is the code of the last item of the previous page; Limit the page's size.
	After string
	Limit int
}

// Page is one page of a search.
type Page struct {
	Items []Entry `json:"items"`
	// Total is how many items match, on every page.
	Total int `json:"total"`
	// Next is the code to pass as After for the next page; empty on the last.
	Next string `json:"next_page_token,omitempty"`
}

// Search returns the page of items that match q, in code order.
func (c *Catalog) Search(q Query) Page {
	text := strings.ToLower(strings.TrimSpace(q.Text))
	after := NormalizeCode(q.After)
	page := Page{Items: []Entry{}}
	for _, e := range c.Items {
		if !q.matches(&e, text) {
			continue
		}
		page.Total++
		switch {
		case e.Code <= after:
		case q.Limit > 0 && len(page.Items) == q.Limit:
			page.Next = page.Items[len(page.Items)-1].Code
		default:
			page.Items = append(page.Items, e)
		}
	}
	return page
}

func (q *Query) matches(e *Entry, text string) bool {
	switch {
	case q.Department != "" && e.Department != NormalizeCode(q.Department):
		return false
	case q.Tier != "" && !e.AcceptedAt(q.Tier):
		return false
	case q.Mode != "" && e.Mode != q.Mode:
		return false
	case q.Type != "" && e.Type != q.Type:
		return false
	case text == "":
		return true
	}
	for _, s := range []string{e.Code, e.Name, e.NameEN, e.DepartmentName, e.DepartmentNameEN} {
		if strings.Contains(strings.ToLower(s), text) {
			return true
		}
	}
	return false
}

// Notice is the one-time notice (一次性告知书) of an item: everything an applicant must bring and
// know, on one page, so that nobody has to come back to ask.
type Notice struct {
	Code             string        `json:"code"`
	Name             string        `json:"name"`
	NameEN           string        `json:"name_en,omitempty"`
	Department       Department    `json:"department"`
	Type             ItemType      `json:"type"`
	TypeLabel        string        `json:"type_label"`
	Mode             Mode          `json:"mode"`
	ModeLabel        string        `json:"mode_label"`
	JointDepartments []Department  `json:"joint_departments,omitempty"`
	AcceptAt         []TierLabel   `json:"accept_at"`
	DecidedAt        TierLabel     `json:"decided_at"`
	LegalBasis       string        `json:"legal_basis,omitempty"`
	Conditions       string        `json:"conditions,omitempty"`
	Materials        []NoticeEntry `json:"materials"`
	Steps            []Step        `json:"steps"`
	StatutoryLimit   Limit         `json:"statutory_limit"`
	PromisedLimit    Limit         `json:"promised_limit"`
	// StatutoryText and PromisedText read the limits in Chinese ("20个工作日").
	StatutoryText string    `json:"statutory_limit_text"`
	PromisedText  string    `json:"promised_limit_text"`
	Fees          []Fee     `json:"fees"`
	TotalFen      int64     `json:"total_fen"`
	Version       uint64    `json:"version"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// NoticeEntry is a material as the notice lists it, numbered, with its form in words.
type NoticeEntry struct {
	Material
	No        int    `json:"no"`
	FormLabel string `json:"form_label"`
}

// TierLabel is a tier with its Chinese name.
type TierLabel struct {
	Tier  tier.Tier `json:"tier"`
	Label string    `json:"label"`
}

// Notice builds the one-time notice of item code.
func (c *Catalog) Notice(code string) (*Notice, bool) {
	e, ok := c.Item(code)
	if !ok {
		return nil, false
	}
	dept, _ := c.Department(e.Department)
	if dept.Code == "" {
		dept.Code = e.Department
	}
	n := &Notice{
		Code: e.Code, Name: e.Name, NameEN: e.NameEN, Department: dept,
		Type: e.Type, TypeLabel: e.Type.Label(), Mode: e.Mode, ModeLabel: e.Mode.Label(),
		DecidedAt:  TierLabel{e.DecideTier, e.DecideTier.Label()},
		LegalBasis: e.LegalBasis, Conditions: e.Conditions, Steps: e.Steps,
		StatutoryLimit: e.StatutoryLimit, PromisedLimit: e.PromisedLimit,
		StatutoryText: e.StatutoryLimit.String(), PromisedText: e.PromisedLimit.String(),
		Fees: e.Fees, TotalFen: e.TotalFen(), Version: e.Version, UpdatedAt: e.UpdatedAt,
		Materials: make([]NoticeEntry, len(e.Materials)),
	}
	if n.Fees == nil {
		n.Fees = []Fee{}
	}
	if n.Steps == nil {
		n.Steps = []Step{}
	}
	for _, code := range e.JointDepartments {
		d, ok := c.Department(code)
		if !ok {
			d = Department{Code: code}
		}
		n.JointDepartments = append(n.JointDepartments, d)
	}
	for _, t := range e.AcceptTiers {
		n.AcceptAt = append(n.AcceptAt, TierLabel{t, t.Label()})
	}
	for i, m := range e.Materials {
		n.Materials[i] = NoticeEntry{Material: m, No: i + 1, FormLabel: m.Form.Label()}
	}
	return n, true
}
