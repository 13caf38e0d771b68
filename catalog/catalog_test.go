package catalog_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/govgrid/govgrid/catalog"
	"github.com/govgrid/govgrid/catalog/sample"
	"github.com/govgrid/govgrid/tier"
)

func validItem() catalog.Item {
	return catalog.Item{
		Code: "mz-001", Name: "最低生活保障申请", NameEN: "Minimum living allowance", Department: "MZ",
		Type: catalog.TypePublic, Mode: catalog.ModeReported,
		AcceptTiers: []tier.Tier{tier.Community, tier.Township}, DecideTier: tier.District,
		LegalBasis:     "《社会救助暂行办法》",
		Materials:      []catalog.Material{{Name: "居民身份证", Required: true, Form: catalog.FormOriginalAndCopy, Copies: 1}},
		Steps:          []catalog.Step{{Name: "申请"}, {Name: "审批"}},
		StatutoryLimit: catalog.Limit{WorkingDays: 30}, PromisedLimit: catalog.Limit{WorkingDays: 20},
	}
}

// TestItemRules: every rule of an item, each refused with the field it names, and nothing else.
func TestItemRules(t *testing.T) {
	depts := map[string]bool{"MZ": true, "CZ": true}
	cases := []struct {
		name   string
		change func(*catalog.Item)
		field  string // "" = valid
	}{
		{"valid", func(*catalog.Item) {}, ""},
		{"code lower case is normalised", func(it *catalog.Item) { it.Code = " mz-002 " }, ""},
		{"no code", func(it *catalog.Item) { it.Code = "" }, "code"},
		{"code with a space", func(it *catalog.Item) { it.Code = "MZ 1" }, "code"},
		{"no name", func(it *catalog.Item) { it.Name = " " }, "name"},
		{"name too long", func(it *catalog.Item) { it.Name = strings.Repeat("申", catalog.MaxName+1) }, "name"},
		{"unknown department", func(it *catalog.Item) { it.Department = "XX" }, "department"},
		{"unknown type", func(it *catalog.Item) { it.Type = "licence" }, "type"},
		{"unknown mode", func(it *catalog.Item) { it.Mode = "fast" }, "mode"},
		{"licence without legal basis", func(it *catalog.Item) { it.Type, it.LegalBasis = catalog.TypeLicence, "" }, "legal_basis"},
		{"joint without departments", func(it *catalog.Item) { it.Mode = catalog.ModeJoint }, "joint_departments"},
		{"joint with its own department", func(it *catalog.Item) { it.Mode, it.JointDepartments = catalog.ModeJoint, []string{"MZ"} }, "joint_departments[0]"},
		{"joint with an unknown department", func(it *catalog.Item) { it.Mode, it.JointDepartments = catalog.ModeJoint, []string{"XX"} }, "joint_departments[0]"},
		{"joint", func(it *catalog.Item) { it.Mode, it.JointDepartments = catalog.ModeJoint, []string{"CZ"} }, ""},
		{"joint departments on a promised item", func(it *catalog.Item) { it.Mode, it.JointDepartments = catalog.ModePromised, []string{"CZ"} }, "joint_departments"},
		{"no accepting tier", func(it *catalog.Item) { it.AcceptTiers = nil }, "accept_tiers"},
		{"unknown tier", func(it *catalog.Item) { it.AcceptTiers = []tier.Tier{"city"} }, "accept_tiers[0]"},
		{"tier twice", func(it *catalog.Item) { it.AcceptTiers = []tier.Tier{tier.Community, tier.Community} }, "accept_tiers[1]"},
		{"unknown deciding tier", func(it *catalog.Item) { it.DecideTier = "province" }, "decide_tier"},
		{"accepted above where it is decided", func(it *catalog.Item) {
			it.Mode, it.DecideTier = catalog.ModePromised, tier.Township
			it.AcceptTiers = []tier.Tier{tier.District}
		}, "accept_tiers[0]"},
		{"reported but accepted where decided", func(it *catalog.Item) { it.AcceptTiers = []tier.Tier{tier.District} }, "accept_tiers"},
		{"immediate accepted below", func(it *catalog.Item) {
			it.Mode, it.AcceptTiers, it.StatutoryLimit, it.PromisedLimit = catalog.ModeImmediate, []tier.Tier{tier.Community}, catalog.Limit{}, catalog.Limit{}
		}, "accept_tiers[0]"},
		{"immediate", func(it *catalog.Item) {
			it.Mode, it.AcceptTiers, it.StatutoryLimit, it.PromisedLimit = catalog.ModeImmediate, []tier.Tier{tier.District}, catalog.Limit{Hours: 2}, catalog.Limit{Hours: 1}
		}, ""},
		{"immediate in working days", func(it *catalog.Item) {
			it.Mode, it.AcceptTiers, it.PromisedLimit = catalog.ModeImmediate, []tier.Tier{tier.District}, catalog.Limit{}
		}, "statutory_limit"},
		{"promised without days", func(it *catalog.Item) { it.Mode, it.PromisedLimit = catalog.ModePromised, catalog.Limit{} }, "promised_limit.working_days"},
		{"promised longer than statutory", func(it *catalog.Item) { it.PromisedLimit.WorkingDays = 31 }, "promised_limit"},
		{"days and hours", func(it *catalog.Item) { it.StatutoryLimit.Hours = 4 }, "statutory_limit"},
		{"too many days", func(it *catalog.Item) { it.StatutoryLimit.WorkingDays = 400 }, "statutory_limit.working_days"},
		{"material without name", func(it *catalog.Item) { it.Materials[0].Name = "" }, "materials[0].name"},
		{"material form", func(it *catalog.Item) { it.Materials[0].Form = "scan" }, "materials[0].form"},
		{"material copies", func(it *catalog.Item) { it.Materials[0].Copies = 0 }, "materials[0].copies"},
		{"material twice", func(it *catalog.Item) { it.Materials = append(it.Materials, it.Materials[0]) }, "materials[1].name"},
		{"no steps", func(it *catalog.Item) { it.Steps = nil }, "steps"},
		{"step without name", func(it *catalog.Item) { it.Steps[1].Name = "" }, "steps[1].name"},
		{"fee without basis", func(it *catalog.Item) { it.Fees = []catalog.Fee{{Name: "工本费", StandardFen: 500}} }, "fees[0].basis"},
		{"negative fee", func(it *catalog.Item) { it.Fees = []catalog.Fee{{Name: "工本费", StandardFen: -1, Basis: "x"}} }, "fees[0].standard_fen"},
		{"free line without basis", func(it *catalog.Item) { it.Fees = []catalog.Fee{{Name: "不收费"}} }, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			it := validItem()
			c.change(&it)
			it.Normalize()
			problems := it.Validate(depts)
			var fields []string
			for _, p := range problems {
				fields = append(fields, p.Field)
			}
			switch {
			case c.field == "" && len(problems) > 0:
				t.Fatalf("refused: %v", problems)
			case c.field != "" && (len(problems) != 1 || problems[0].Field != c.field):
				t.Fatalf("problems %v, want one naming %s", fields, c.field)
			}
		})
	}
}

// TestJSONFileProblemsNameTheirLines: every problem of a file at once, each at the line its entry
// starts on; an unknown field is one of them; a file with problems is refused whole.
func TestJSONFileProblemsNameTheirLines(t *testing.T) {
	file := `{
  "departments": [
    {"code": "MZ", "name": "民政局"},
    {"code": "MZ", "name": "民政局"}
  ],
  "items": [
    {"code": "MZ-001", "name": "低保", "department": "MZ", "type": "public_service", "mode": "promised",
     "accept_tiers": ["community"], "decide_tier": "township", "materials": [], "steps": [{"name": "申请"}],
     "statutory_limit": {"working_days": 10}, "promised_limit": {"working_days": 5}},
    {"code": "MZ-002", "name": "", "department": "XX", "type": "public_service", "mode": "promised",
     "accept_tiers": ["community"], "decide_tier": "township", "materials": [], "steps": [{"name": "申请"}],
     "statutory_limit": {"working_days": 10}, "promised_limit": {"working_days": 5}},
    {"code": "MZ-003", "nmae": "typo"}
  ]
}`
	_, err := catalog.Read(strings.NewReader(file), catalog.FormatJSON, nil)
	var ps catalog.Problems
	if !asProblems(err, &ps) {
		t.Fatalf("err %v, want problems", err)
	}
	if len(ps) != 1 || ps[0].Line != 13 || !strings.Contains(ps[0].Reason, "nmae") {
		t.Fatalf("problems %v, want the unknown field at line 13", ps)
	}
	file = strings.Replace(file, `,
    {"code": "MZ-003", "nmae": "typo"}`, "", 1)
	_, err = catalog.Read(strings.NewReader(file), catalog.FormatJSON, nil)
	if !asProblems(err, &ps) {
		t.Fatalf("err %v, want problems", err)
	}
	got := map[string]int{}
	for _, p := range ps {
		got[p.Field] = p.Line
	}
	want := map[string]int{"code": 4, "name": 10, "department": 10}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("problems %v, want lines %v", ps, want)
	}

	for _, bad := range []string{`[]`, `{"items": [`, `{"items": {}}`, `{"items": [{"code": 5}]}`} {
		if _, err := catalog.Read(strings.NewReader(bad), catalog.FormatJSON, nil); !asProblems(err, &ps) || ps[0].Line != 1 {
			t.Errorf("%s: %v, want a problem at line 1", bad, err)
		}
	}
}

func asProblems(err error, ps *catalog.Problems) bool {
	p, ok := err.(catalog.Problems)
	*ps = p
	return ok && len(p) > 0
}

// TestCSVRoundTrip: the sample written as CSV reads back as the same catalogue, and as JSON too.
func TestCSVRoundTrip(t *testing.T) {
	want, err := sample.File()
	if err != nil {
		t.Fatal(err)
	}
	for _, format := range []catalog.Format{catalog.FormatCSV, catalog.FormatJSON} {
		var buf bytes.Buffer
		write := catalog.WriteCSV
		if format == catalog.FormatJSON {
			write = catalog.WriteJSON
		}
		if err := write(&buf, want); err != nil {
			t.Fatal(err)
		}
		got, err := catalog.Read(&buf, format, nil)
		if err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		a, _ := json.Marshal(want)
		b, _ := json.Marshal(got)
		if !bytes.Equal(a, b) {
			t.Fatalf("%s round trip differs", format)
		}
	}
}

// TestCSVProblemsNameTheirLines: rows out of place, bad numbers and flags, unknown kinds and
// columns are named by line, with the item's problems at its item row.
func TestCSVProblemsNameTheirLines(t *testing.T) {
	head := "record,code,name,department,type,mode,accept_tiers,decide_tier,statutory_days,promised_days,required,form,copies\n"
	file := head +
		"material,MZ-001,身份证,,,,,,,,yes,original,1\n" + // line 2: before any item
		"department,MZ,民政局,,,,,,,,,,\n" +
		"item,MZ-001,低保,MZ,public_service,promised,community,township,ten,5,,,\n" + // line 4: days
		"material,MZ-002,身份证,,,,,,,,maybe,original,1\n" + // line 5: another item's code
		"material,MZ-001,身份证,,,,,,,,maybe,original,1\n" + // line 6: flag
		"stamp,MZ-001,x,,,,,,,,,,\n" + // line 7: kind
		"step,MZ-001,申请,,,,,,,,,,\n"
	_, err := catalog.Read(strings.NewReader(file), catalog.FormatCSV, nil)
	var ps catalog.Problems
	if !asProblems(err, &ps) {
		t.Fatalf("err %v, want problems", err)
	}
	lines := map[int]string{}
	for _, p := range ps {
		lines[p.Line] = p.Field
	}
	want := map[int]string{2: "record", 4: "statutory_days", 5: "code", 6: "required", 7: "record"}
	if !reflect.DeepEqual(lines, want) {
		t.Fatalf("problems %v, want %v", ps, want)
	}

	file = head + "department,MZ,民政局,,,,,,,,,,\n" +
		"item,MZ-001,,MZ,public_service,promised,community,district,10,20,,,\n" // line 3: no name, promised > statutory, no steps
	_, err = catalog.Read(strings.NewReader(file), catalog.FormatCSV, nil)
	if !asProblems(err, &ps) || len(ps) != 3 {
		t.Fatalf("err %v, want three problems at line 3", err)
	}
	for _, p := range ps {
		if p.Line != 3 || p.Item != "MZ-001" {
			t.Fatalf("problem %v, want it at line 3, of MZ-001", p)
		}
	}
	if _, err := catalog.Read(strings.NewReader("record,code,name,colour\n"), catalog.FormatCSV, nil); !asProblems(err, &ps) || ps[0].Line != 1 {
		t.Fatalf("err %v, want the unknown column at line 1", err)
	}
}

// TestSearchAndNotice: filters, text in either language and the department's name, paging by
// code; the notice numbers every material and sums the fees.
func TestSearchAndNotice(t *testing.T) {
	f, err := sample.File()
	if err != nil {
		t.Fatal(err)
	}
	var entries []catalog.Entry
	for _, it := range f.Items {
		entries = append(entries, catalog.Entry{Item: it, Owner: "cd", Version: 1})
	}
	c := catalog.New(f.Departments, entries)

	all := c.Search(catalog.Query{})
	if all.Total != 89 || len(all.Items) != 89 || all.Next != "" {
		t.Fatalf("all: %d of %d", len(all.Items), all.Total)
	}
	var seen []string
	for q := (catalog.Query{Limit: 20}); ; {
		p := c.Search(q)
		for _, e := range p.Items {
			seen = append(seen, e.Code)
		}
		if p.Total != 89 || p.Next == "" {
			break
		}
		q.After = p.Next
	}
	if len(seen) != 89 || seen[0] != all.Items[0].Code || seen[88] != all.Items[88].Code {
		t.Fatalf("paging saw %d items", len(seen))
	}
	for _, q := range []struct {
		query catalog.Query
		check func(catalog.Entry) bool
	}{
		{catalog.Query{Text: "最低生活保障"}, func(e catalog.Entry) bool { return strings.Contains(e.Name, "最低生活保障") }},
		{catalog.Query{Text: "民政局"}, func(e catalog.Entry) bool { return e.Department == "MZ" }},
		{catalog.Query{Text: "LEGAL aid"}, func(e catalog.Entry) bool { return e.Code == "SF-001" }},
		{catalog.Query{Department: "rs"}, func(e catalog.Entry) bool { return e.Department == "RS" }},
		{catalog.Query{Tier: tier.Community}, func(e catalog.Entry) bool { return e.AcceptedAt(tier.Community) }},
		{catalog.Query{Mode: catalog.ModeJoint}, func(e catalog.Entry) bool { return e.Mode == catalog.ModeJoint }},
		{catalog.Query{Type: catalog.TypeConvenience, Tier: tier.Community}, func(e catalog.Entry) bool { return e.Type == catalog.TypeConvenience && e.AcceptedAt(tier.Community) }},
	} {
		p := c.Search(q.query)
		if p.Total == 0 || p.Total != len(p.Items) {
			t.Errorf("%+v: %d of %d", q.query, len(p.Items), p.Total)
		}
		for _, e := range p.Items {
			if !q.check(e) {
				t.Errorf("%+v found %s %s", q.query, e.Code, e.Name)
			}
		}
	}

	n, ok := c.Notice("js-007")
	if !ok || n.Code != "JS-007" || n.TotalFen != 20000 || len(n.Materials) != 3 || n.Materials[2].No != 3 ||
		n.Department.Name != "住房和城乡建设局" || n.ModeLabel != "承诺" || n.StatutoryText != "20个工作日" || len(n.AcceptAt) != 2 {
		t.Fatalf("notice %+v", n)
	}
	if _, ok := c.Notice("XX-1"); ok {
		t.Fatal("a notice for an unknown item")
	}
}
