package catalog

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/govgrid/govgrid/tier"
)

// MaxFileBytes is the largest catalogue file read.
const MaxFileBytes = 16 << 20

// Format is a catalogue file's format.
type Format string

// The file formats.
const (
	FormatJSON Format = "json"
	FormatCSV  Format = "csv"
)

// FormatOf guesses a file's format from its name: .csv is CSV, anything else JSON.
func FormatOf(name string) Format {
	if strings.HasSuffix(strings.ToLower(name), ".csv") {
		return FormatCSV
	}
	return FormatJSON
}

// Read reads a catalogue file and validates it (known: the department codes the grid already
// has). Every problem is returned at once, each with its line.
func Read(r io.Reader, format Format, known map[string]bool) (*File, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileBytes {
		return nil, Problems{{Field: "file", Reason: fmt.Sprintf("larger than %d bytes", MaxFileBytes)}}
	}
	var f *File
	var lines *Lines
	switch format {
	case FormatCSV:
		f, lines, err = readCSV(data)
	case FormatJSON:
		f, lines, err = readJSON(data)
	default:
		return nil, fmt.Errorf("catalog: unknown format %q: want json or csv", format)
	}
	if err != nil {
		return nil, err
	}
	return f, f.Validate(known, lines).Err()
}

// readJSON decodes {"departments":[...],"items":[...]}, noting the line each entry starts on.
// Unknown fields are problems (a misspelt field would otherwise vanish).
func readJSON(data []byte) (*File, *Lines, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	lineAt := func(off int64) int { return 1 + bytes.Count(data[:off], []byte("\n")) }
	fail := func(err error) (*File, *Lines, error) {
		off := dec.InputOffset()
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			off = se.Offset
		case errors.As(err, &te):
			off = te.Offset
		}
		return nil, nil, Problems{{Line: lineAt(min(off, int64(len(data)))), Field: "file", Reason: err.Error()}}
	}
	if t, err := dec.Token(); err != nil {
		return fail(err)
	} else if t != json.Delim('{') {
		return fail(errors.New(`a catalogue is an object: {"departments": [...], "items": [...]}`))
	}
	f, lines := &File{}, &Lines{}
	var p Problems
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return fail(err)
		}
		key, _ := t.(string)
		if key != "departments" && key != "items" {
			var skip json.RawMessage
			line := lineAt(dec.InputOffset())
			if err := dec.Decode(&skip); err != nil {
				return fail(err)
			}
			p = append(p, Problem{Line: line, Field: key, Reason: `unknown field: a catalogue has "departments" and "items"`})
			continue
		}
		if t, err := dec.Token(); err != nil {
			return fail(err)
		} else if t != json.Delim('[') {
			return fail(fmt.Errorf("%q is a list", key))
		}
		for dec.More() {
			// The offset is where the previous value ended; the entry starts after the
			// comma and the white space that follow it.
			off := dec.InputOffset()
			for off < int64(len(data)) && strings.IndexByte(" \t\r\n,", data[off]) >= 0 {
				off++
			}
			line := lineAt(off)
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return fail(err)
			}
			strict := json.NewDecoder(bytes.NewReader(raw))
			strict.DisallowUnknownFields()
			var err error
			if key == "departments" {
				var d Department
				err = strict.Decode(&d)
				f.Departments, lines.Departments = append(f.Departments, d), append(lines.Departments, line)
			} else {
				var it Item
				err = strict.Decode(&it)
				f.Items, lines.Items = append(f.Items, it), append(lines.Items, line)
			}
			if err != nil {
				p = append(p, Problem{Line: line, Field: key, Reason: err.Error()})
			}
		}
		if _, err := dec.Token(); err != nil {
			return fail(err)
		}
	}
	if _, err := dec.Token(); err != nil {
		return fail(err)
	}
	if len(p) > 0 {
		return nil, nil, p
	}
	return f, lines, nil
}

// WriteJSON writes f as an indented catalogue file.
func WriteJSON(w io.Writer, f *File) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(f)
}

// The CSV layout: one row per record, its kind in the first column. A department or item row
// starts an entry; the material, step and fee rows after an item row belong to it (their code
// column repeats the item's code, and must). Lists inside a cell (accept tiers, joint
// departments) are separated by ';'. Columns a kind does not use stay empty.
var csvHeader = []string{
	"record", "code", "name", "name_en", "department", "type", "mode", "joint_departments",
	"accept_tiers", "decide_tier", "legal_basis", "conditions",
	"statutory_days", "statutory_hours", "promised_days", "promised_hours",
	"required", "form", "copies", "template", "standard_fen", "basis", "description",
}

// The record kinds of the CSV layout.
const (
	recordDepartment = "department"
	recordItem       = "item"
	recordMaterial   = "material"
	recordStep       = "step"
	recordFee        = "fee"
)

func readCSV(data []byte) (*File, *Lines, error) {
	data = bytes.TrimPrefix(data, []byte("\uFEFF")) // spreadsheets save a byte-order mark
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	header, err := r.Read()
	if err != nil {
		return nil, nil, Problems{{Line: 1, Field: "header", Reason: fmt.Sprintf("cannot read the header: %v", err)}}
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.TrimSpace(h)] = i
	}
	var p Problems
	for _, h := range []string{"record", "code", "name"} {
		if _, ok := col[h]; !ok {
			p = append(p, Problem{Line: 1, Field: "header", Reason: fmt.Sprintf("no %q column (the columns are: %s)", h, strings.Join(csvHeader, ","))})
		}
	}
	for h := range col {
		if !slices.Contains(csvHeader, h) {
			p = append(p, Problem{Line: 1, Field: "header", Reason: fmt.Sprintf("unknown column %q", h)})
		}
	}
	if len(p) > 0 {
		return nil, nil, p
	}
	f, lines := &File{}, &Lines{}
	var cur *Item
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		line, _ := r.FieldPos(0)
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				line = pe.Line
			}
			p = append(p, Problem{Line: line, Field: "row", Reason: err.Error()})
			break
		}
		row := csvRow{rec: rec, col: col, line: line}
		kind := strings.ToLower(row.get("record"))
		if kind != recordItem && kind != recordDepartment && cur == nil {
			p = append(p, row.problem("record", "a %s row follows the item it belongs to", kind))
			continue
		}
		switch kind {
		case recordDepartment:
			f.Departments = append(f.Departments, Department{Code: row.get("code"), Name: row.get("name"), NameEN: row.get("name_en")})
			lines.Departments = append(lines.Departments, line)
			cur = nil
		case recordItem:
			it := Item{
				Code: row.get("code"), Name: row.get("name"), NameEN: row.get("name_en"), Department: row.get("department"),
				Type: ItemType(row.get("type")), Mode: Mode(row.get("mode")), JointDepartments: row.list("joint_departments"),
				DecideTier: tier.Tier(row.get("decide_tier")), LegalBasis: row.get("legal_basis"), Conditions: row.get("conditions"),
				StatutoryLimit: Limit{WorkingDays: row.int("statutory_days", &p), Hours: row.int("statutory_hours", &p)},
				PromisedLimit:  Limit{WorkingDays: row.int("promised_days", &p), Hours: row.int("promised_hours", &p)},
			}
			for _, t := range row.list("accept_tiers") {
				it.AcceptTiers = append(it.AcceptTiers, tier.Tier(t))
			}
			f.Items = append(f.Items, it)
			lines.Items = append(lines.Items, line)
			cur = &f.Items[len(f.Items)-1]
		default:
			if NormalizeCode(row.get("code")) != NormalizeCode(cur.Code) {
				p = append(p, row.problem("code", "%q: a %s row belongs to the item above it (%s)", row.get("code"), kind, cur.Code))
				continue
			}
			switch kind {
			case recordMaterial:
				cur.Materials = append(cur.Materials, Material{
					Name: row.get("name"), NameEN: row.get("name_en"), Required: row.bool("required", &p),
					Form: Form(row.get("form")), Copies: row.int("copies", &p), Template: row.get("template"), Note: row.get("description"),
				})
			case recordStep:
				cur.Steps = append(cur.Steps, Step{Name: row.get("name"), NameEN: row.get("name_en"), Description: row.get("description")})
			case recordFee:
				cur.Fees = append(cur.Fees, Fee{Name: row.get("name"), StandardFen: int64(row.int("standard_fen", &p)), Basis: row.get("basis")})
			default:
				p = append(p, row.problem("record", "%q: want department, item, material, step or fee", kind))
			}
		}
	}
	if len(p) > 0 {
		return nil, nil, p
	}
	return f, lines, nil
}

type csvRow struct {
	rec  []string
	col  map[string]int
	line int
}

func (r csvRow) get(name string) string {
	i, ok := r.col[name]
	if !ok || i >= len(r.rec) {
		return ""
	}
	return strings.TrimSpace(r.rec[i])
}

func (r csvRow) list(name string) []string {
	var out []string
	for _, s := range strings.FieldsFunc(r.get(name), func(c rune) bool { return c == ';' || c == '；' }) {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func (r csvRow) int(name string, p *Problems) int {
	s := r.get(name)
	if s == "" {
		return 0
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		*p = append(*p, r.problem(name, "%q is not a whole number", s))
	}
	return n
}

func (r csvRow) bool(name string, p *Problems) bool {
	switch strings.ToLower(r.get(name)) {
	case "yes", "true", "1", "是", "必需", "必要":
		return true
	case "", "no", "false", "0", "否", "可选":
		return false
	}
	*p = append(*p, r.problem(name, "%q: want yes or no (是/否)", r.get(name)))
	return false
}

func (r csvRow) problem(field, format string, args ...any) Problem {
	return Problem{Line: r.line, Item: NormalizeCode(r.get("code")), Field: field, Reason: fmt.Sprintf(format, args...)}
}

// WriteCSV writes f in the CSV layout Read takes.
func WriteCSV(w io.Writer, f *File) error {
	cw := csv.NewWriter(w)
	row := func(values map[string]string) error {
		rec := make([]string, len(csvHeader))
		for i, h := range csvHeader {
			rec[i] = values[h]
		}
		return cw.Write(rec)
	}
	if err := cw.Write(csvHeader); err != nil {
		return err
	}
	num := func(n int) string {
		if n == 0 {
			return ""
		}
		return strconv.Itoa(n)
	}
	for _, d := range f.Departments {
		if err := row(map[string]string{"record": recordDepartment, "code": d.Code, "name": d.Name, "name_en": d.NameEN}); err != nil {
			return err
		}
	}
	for _, it := range f.Items {
		tiers := make([]string, len(it.AcceptTiers))
		for i, t := range it.AcceptTiers {
			tiers[i] = string(t)
		}
		err := row(map[string]string{
			"record": recordItem, "code": it.Code, "name": it.Name, "name_en": it.NameEN, "department": it.Department,
			"type": string(it.Type), "mode": string(it.Mode), "joint_departments": strings.Join(it.JointDepartments, ";"),
			"accept_tiers": strings.Join(tiers, ";"), "decide_tier": string(it.DecideTier),
			"legal_basis": it.LegalBasis, "conditions": it.Conditions,
			"statutory_days": num(it.StatutoryLimit.WorkingDays), "statutory_hours": num(it.StatutoryLimit.Hours),
			"promised_days": num(it.PromisedLimit.WorkingDays), "promised_hours": num(it.PromisedLimit.Hours),
		})
		if err != nil {
			return err
		}
		for _, m := range it.Materials {
			req := "no"
			if m.Required {
				req = "yes"
			}
			err := row(map[string]string{"record": recordMaterial, "code": it.Code, "name": m.Name, "name_en": m.NameEN,
				"required": req, "form": string(m.Form), "copies": strconv.Itoa(m.Copies), "template": m.Template, "description": m.Note})
			if err != nil {
				return err
			}
		}
		for _, s := range it.Steps {
			if err := row(map[string]string{"record": recordStep, "code": it.Code, "name": s.Name, "name_en": s.NameEN, "description": s.Description}); err != nil {
				return err
			}
		}
		for _, fee := range it.Fees {
			if err := row(map[string]string{"record": recordFee, "code": it.Code, "name": fee.Name, "standard_fen": strconv.FormatInt(fee.StandardFen, 10), "basis": fee.Basis}); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
}
