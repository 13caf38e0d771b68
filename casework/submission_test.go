package casework

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// validSubmission returns a submission that passes Validate; tests change one thing at a time.
func validSubmission() *Submission {
	return &Submission{
		Kind:        KindApplication,
		ItemCode:    "QT-0010.a_1",
		Title:       "居住证办理",
		Description: "申请人在本社区居住满半年。",
		Applicant:   &Applicant{Name: "张三", IDNumber: "63010219900101123X", Phone: "13800138000"},
		Materials: []Material{
			{Name: "身份证复印件", Digest: strings.Repeat("ab", 32), Pages: 2},
			{Name: "租房合同"},
		},
		DecideTier: "township",
		RequestID:  "req-1",
		Actor:      "clerk-07",
	}
}

// fieldsOf returns the sorted set of field names err reports, failing if err is not FieldErrors.
func fieldsOf(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var fe FieldErrors
	if !errors.As(err, &fe) {
		t.Fatalf("Validate returned %T (%v), want FieldErrors", err, err)
	}
	if len(fe) == 0 {
		t.Fatalf("Validate returned an empty FieldErrors as a non-nil error")
	}
	var out []string
	for _, e := range fe {
		if e.Reason == "" {
			t.Errorf("field %q has no reason", e.Field)
		}
		if !strings.Contains(fe.Error(), e.Field+": "+e.Reason) {
			t.Errorf("Error() %q does not mention %q", fe.Error(), e.Field)
		}
		out = append(out, e.Field)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func TestSubmissionValidate(t *testing.T) {
	invalidUTF8 := "ab\xff\xfecd"
	tests := []struct {
		name   string
		change func(s *Submission)
		want   []string // sorted set of reported fields; nil means valid
	}{
		{"valid application", func(s *Submission) {}, nil},
		{"valid grievance without item code", func(s *Submission) { s.Kind = KindGrievance; s.ItemCode = "" }, nil},
		{"valid minimal", func(s *Submission) {
			s.Description, s.Materials, s.DecideTier, s.RequestID, s.Actor = "", nil, "", "", ""
		}, nil},

		// kind
		{"kind empty", func(s *Submission) { s.Kind = "" }, []string{"kind"}},
		{"kind unknown", func(s *Submission) { s.Kind = "complaint" }, []string{"kind"}},
		{"kind wrong case", func(s *Submission) { s.Kind = "Application" }, []string{"kind"}},

		// item_code
		{"item_code required for application", func(s *Submission) { s.ItemCode = "" }, []string{"item_code"}},
		{"item_code blank for application", func(s *Submission) { s.ItemCode = "   " }, []string{"item_code"}},
		{"item_code optional for grievance", func(s *Submission) { s.Kind = KindGrievance; s.ItemCode = "" }, nil},
		{"item_code checked for grievance too", func(s *Submission) { s.Kind = KindGrievance; s.ItemCode = "a b" }, []string{"item_code"}},
		{"item_code space", func(s *Submission) { s.ItemCode = "QT 001" }, []string{"item_code"}},
		{"item_code slash", func(s *Submission) { s.ItemCode = "QT/001" }, []string{"item_code"}},
		{"item_code chinese", func(s *Submission) { s.ItemCode = "事项001" }, []string{"item_code"}},
		{"item_code at limit", func(s *Submission) { s.ItemCode = strings.Repeat("a", MaxItemCode) }, nil},
		{"item_code too long", func(s *Submission) { s.ItemCode = strings.Repeat("a", MaxItemCode+1) }, []string{"item_code"}},
		{"item_code invalid UTF-8", func(s *Submission) { s.ItemCode = invalidUTF8 }, []string{"item_code"}},

		// title
		{"title missing", func(s *Submission) { s.Title = "" }, []string{"title"}},
		{"title blank", func(s *Submission) { s.Title = " \t\n" }, []string{"title"}},
		{"title at limit in runes", func(s *Submission) { s.Title = strings.Repeat("办", MaxTitle) }, nil},
		{"title too long", func(s *Submission) { s.Title = strings.Repeat("办", MaxTitle+1) }, []string{"title"}},
		{"title invalid UTF-8", func(s *Submission) { s.Title = invalidUTF8 }, []string{"title"}},

		// description
		{"description at limit", func(s *Submission) { s.Description = strings.Repeat("述", MaxDescription) }, nil},
		{"description too long", func(s *Submission) { s.Description = strings.Repeat("a", MaxDescription+1) }, []string{"description"}},
		{"description invalid UTF-8", func(s *Submission) { s.Description = invalidUTF8 }, []string{"description"}},

		// request_id, actor
		{"request_id too long", func(s *Submission) { s.RequestID = strings.Repeat("r", MaxRequestID+1) }, []string{"request_id"}},
		{"request_id invalid UTF-8", func(s *Submission) { s.RequestID = invalidUTF8 }, []string{"request_id"}},
		{"actor too long", func(s *Submission) { s.Actor = strings.Repeat("a", MaxActor+1) }, []string{"actor"}},

		// decide_tier
		{"decide_tier community", func(s *Submission) { s.DecideTier = "community" }, nil},
		{"decide_tier district", func(s *Submission) { s.DecideTier = "district" }, nil},
		{"decide_tier unknown", func(s *Submission) { s.DecideTier = "province" }, []string{"decide_tier"}},
		{"decide_tier wrong case", func(s *Submission) { s.DecideTier = "Township" }, []string{"decide_tier"}},

		// applicant
		{"applicant missing", func(s *Submission) { s.Applicant = nil }, []string{"applicant"}},
		{"applicant empty", func(s *Submission) { s.Applicant = &Applicant{} },
			[]string{"applicant.id_number", "applicant.name", "applicant.phone"}},
		{"name missing", func(s *Submission) { s.Applicant.Name = "" }, []string{"applicant.name"}},
		{"name blank", func(s *Submission) { s.Applicant.Name = "  " }, []string{"applicant.name"}},
		{"name at limit", func(s *Submission) { s.Applicant.Name = strings.Repeat("名", MaxName) }, nil},
		{"name too long", func(s *Submission) { s.Applicant.Name = strings.Repeat("名", MaxName+1) }, []string{"applicant.name"}},
		{"name invalid UTF-8", func(s *Submission) { s.Applicant.Name = invalidUTF8 }, []string{"applicant.name"}},

		// id_number
		{"id 18 digits", func(s *Submission) { s.Applicant.IDNumber = "630102199001011234" }, nil},
		{"id ends in X", func(s *Submission) { s.Applicant.IDNumber = "63010219900101123X" }, nil},
		{"id ends in lower-case x", func(s *Submission) { s.Applicant.IDNumber = "63010219900101123x" }, nil},
		{"id born 1900-01-01", func(s *Submission) { s.Applicant.IDNumber = "630102190001011234" }, nil},
		{"id born on leap day", func(s *Submission) { s.Applicant.IDNumber = "630102200002291234" }, nil},
		{"id empty", func(s *Submission) { s.Applicant.IDNumber = "" }, []string{"applicant.id_number"}},
		{"id 17 characters", func(s *Submission) { s.Applicant.IDNumber = "63010219900101123" }, []string{"applicant.id_number"}},
		{"id 19 characters", func(s *Submission) { s.Applicant.IDNumber = "6301021990010112345" }, []string{"applicant.id_number"}},
		{"id 15 digits (first generation)", func(s *Submission) { s.Applicant.IDNumber = "630102900101123" }, []string{"applicant.id_number"}},
		{"id check letter not X", func(s *Submission) { s.Applicant.IDNumber = "63010219900101123A" }, []string{"applicant.id_number"}},
		{"id letter in the body", func(s *Submission) { s.Applicant.IDNumber = "6301021990X101123X" }, []string{"applicant.id_number"}},
		{"id X not last", func(s *Submission) { s.Applicant.IDNumber = "X30102199001011234" }, []string{"applicant.id_number"}},
		{"id full-width digits", func(s *Submission) { s.Applicant.IDNumber = "６３０１０２１９９００１０１１２３４" }, []string{"applicant.id_number"}},
		{"id month 13", func(s *Submission) { s.Applicant.IDNumber = "630102199013011234" }, []string{"applicant.id_number"}},
		{"id day 32", func(s *Submission) { s.Applicant.IDNumber = "630102199001321234" }, []string{"applicant.id_number"}},
		{"id 30 February", func(s *Submission) { s.Applicant.IDNumber = "630102199002301234" }, []string{"applicant.id_number"}},
		{"id 29 February 1900", func(s *Submission) { s.Applicant.IDNumber = "630102190002291234" }, []string{"applicant.id_number"}},
		{"id born before 1900", func(s *Submission) { s.Applicant.IDNumber = "630102189912311234" }, []string{"applicant.id_number"}},
		{"id zero date", func(s *Submission) { s.Applicant.IDNumber = "630102000000001234" }, []string{"applicant.id_number"}},

		// phone
		{"phone mobile", func(s *Submission) { s.Applicant.Phone = "13912345678" }, nil},
		{"phone landline with area code", func(s *Submission) { s.Applicant.Phone = "0971-8123456" }, nil},
		{"phone landline without hyphen", func(s *Submission) { s.Applicant.Phone = "09718123456" }, nil},
		{"phone landline 10 digits", func(s *Submission) { s.Applicant.Phone = "010-1234567" }, nil},
		{"phone landline 12 digits", func(s *Submission) { s.Applicant.Phone = "0971-81234567" }, nil},
		{"phone missing", func(s *Submission) { s.Applicant.Phone = "" }, []string{"applicant.phone"}},
		{"phone mobile 10 digits", func(s *Submission) { s.Applicant.Phone = "1391234567" }, []string{"applicant.phone"}},
		{"phone mobile 12 digits", func(s *Submission) { s.Applicant.Phone = "139123456789" }, []string{"applicant.phone"}},
		{"phone mobile with hyphens", func(s *Submission) { s.Applicant.Phone = "139-1234-5678" }, []string{"applicant.phone"}},
		{"phone 11 digits not 0 or 1", func(s *Submission) { s.Applicant.Phone = "23912345678" }, []string{"applicant.phone"}},
		{"phone landline 9 digits", func(s *Submission) { s.Applicant.Phone = "0971-81234" }, []string{"applicant.phone"}},
		{"phone landline 13 digits", func(s *Submission) { s.Applicant.Phone = "0971-812345678" }, []string{"applicant.phone"}},
		{"phone leading hyphen", func(s *Submission) { s.Applicant.Phone = "-09718123456" }, []string{"applicant.phone"}},
		{"phone international prefix", func(s *Submission) { s.Applicant.Phone = "+8613912345678" }, []string{"applicant.phone"}},
		{"phone with space", func(s *Submission) { s.Applicant.Phone = "0971 8123456" }, []string{"applicant.phone"}},
		{"phone garbage", func(s *Submission) { s.Applicant.Phone = "call me" }, []string{"applicant.phone"}},
		{"phone invalid UTF-8", func(s *Submission) { s.Applicant.Phone = "0971\xff8123456" }, []string{"applicant.phone"}},

		// materials
		{"materials at limit", func(s *Submission) { s.Materials = nMaterials(MaxMaterials) }, nil},
		{"materials too many", func(s *Submission) { s.Materials = nMaterials(MaxMaterials + 1) }, []string{"materials"}},
		{"material name missing", func(s *Submission) { s.Materials[0].Name = "" }, []string{"materials[0].name"}},
		{"second material name missing", func(s *Submission) { s.Materials[1].Name = " " }, []string{"materials[1].name"}},
		{"material name too long", func(s *Submission) { s.Materials[0].Name = strings.Repeat("材", MaxName+1) }, []string{"materials[0].name"}},
		{"material name invalid UTF-8", func(s *Submission) { s.Materials[1].Name = invalidUTF8 }, []string{"materials[1].name"}},
		{"material digest upper-case hex", func(s *Submission) { s.Materials[0].Digest = strings.Repeat("AB", 32) }, nil},
		{"material digest short", func(s *Submission) { s.Materials[0].Digest = strings.Repeat("a", 63) }, []string{"materials[0].digest"}},
		{"material digest long", func(s *Submission) { s.Materials[0].Digest = strings.Repeat("a", 65) }, []string{"materials[0].digest"}},
		{"material digest not hex", func(s *Submission) { s.Materials[0].Digest = strings.Repeat("g", 64) }, []string{"materials[0].digest"}},
		{"material digest with prefix", func(s *Submission) { s.Materials[0].Digest = "sha256:" + strings.Repeat("a", 57) }, []string{"materials[0].digest"}},
		{"material pages zero", func(s *Submission) { s.Materials[0].Pages = 0 }, nil},
		{"material pages at limit", func(s *Submission) { s.Materials[0].Pages = 10000 }, nil},
		{"material pages negative", func(s *Submission) { s.Materials[0].Pages = -1 }, []string{"materials[0].pages"}},
		{"material pages too many", func(s *Submission) { s.Materials[1].Pages = 10001 }, []string{"materials[1].pages"}},
		{"material every problem", func(s *Submission) { s.Materials[1] = Material{Digest: "x", Pages: -5} },
			[]string{"materials[1].digest", "materials[1].name", "materials[1].pages"}},

		// several at once: every problem is reported, not only the first.
		{"several fields", func(s *Submission) {
			s.Kind = "x"
			s.Title = ""
			s.Applicant.IDNumber = "123"
			s.Applicant.Phone = "abc"
			s.Materials[0].Digest = "zz"
			s.DecideTier = "nation"
		}, []string{"applicant.id_number", "applicant.phone", "decide_tier", "kind", "materials[0].digest", "title"}},
		{"empty submission", func(s *Submission) { *s = Submission{} }, []string{"applicant", "kind", "title"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := validSubmission()
			tt.change(s)
			got := fieldsOf(t, s.Validate())
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("fields = %q, want %q", got, tt.want)
			}
		})
	}
}

func nMaterials(n int) []Material {
	ms := make([]Material, n)
	for i := range ms {
		ms[i] = Material{Name: "材料", Pages: 1}
	}
	return ms
}

func TestValidateEmptyFieldErrorsIsNil(t *testing.T) {
	// A valid submission must return an untyped nil, not a nil FieldErrors in an interface.
	if err := validSubmission().Validate(); err != nil {
		t.Fatalf("Validate() = %#v, want nil", err)
	}
}

func TestFieldErrorsJSON(t *testing.T) {
	fe := FieldErrors{{Field: "title", Reason: "is required"}}
	b, err := json.Marshal(fe)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `[{"field":"title","reason":"is required"}]`; got != want {
		t.Errorf("JSON = %s, want %s", got, want)
	}
	if got, want := fe.Error(), "invalid request: title: is required"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestSubmissionJSONRoundTrip(t *testing.T) {
	s := validSubmission()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var back Submission
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&back, s) {
		t.Errorf("round trip changed the submission:\n got %+v\nwant %+v", back, *s)
	}
}

func TestMaskIDNumber(t *testing.T) {
	tests := []struct{ in, want string }{
		{"630102199001011234", "6301**********1234"},
		{"63010219900101123X", "6301**********123X"},
		{"", ""},
		{"123", "***"},
		{"123456789", "*********"},
		{"1234567890", "1234**7890"},
		{"630102900101123", "6301*******1123"},
	}
	for _, tt := range tests {
		got := MaskIDNumber(tt.in)
		if got != tt.want {
			t.Errorf("MaskIDNumber(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if len(got) != len(tt.in) {
			t.Errorf("MaskIDNumber(%q) changed the length to %d", tt.in, len(got))
		}
		if len(tt.in) >= 10 && strings.Contains(got, tt.in[4:len(tt.in)-4]) {
			t.Errorf("MaskIDNumber(%q) = %q still shows the middle", tt.in, got)
		}
	}
}

func FuzzSubmissionValidate(f *testing.F) {
	seed, _ := json.Marshal(validSubmission())
	f.Add(seed)
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"kind":"grievance","title":"t","applicant":{"name":"n","id_number":"63010219900101123X","phone":"0971-8123456"}}`))
	f.Add([]byte(`{"kind":"application","applicant":null,"materials":[{"pages":-1,"digest":"zz"}]}`))
	f.Add([]byte(`{"title":"\udc00\ud800","applicant":{"phone":"-"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var s Submission
		if err := json.Unmarshal(data, &s); err != nil {
			return
		}
		err := s.Validate()
		if err != nil {
			var fe FieldErrors
			if !errors.As(err, &fe) || len(fe) == 0 {
				t.Fatalf("Validate returned %#v, want a non-empty FieldErrors", err)
			}
			if _, aerr := Accept(&s, Acceptance{Number: "s-20261125-000001", Site: "s"}); aerr == nil {
				t.Fatalf("Accept accepted a submission that Validate refused: %v", err)
			}
			return
		}
		// A valid submission is always accepted, and its history verifies.
		c, err := Accept(&s, Acceptance{Number: "s-20261125-000001", Site: "s"})
		if err != nil {
			t.Fatalf("Accept refused a valid submission: %v", err)
		}
		if err := c.VerifyHistory(); err != nil {
			t.Fatalf("VerifyHistory: %v", err)
		}
	})
}
