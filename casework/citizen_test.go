package casework

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestMasks(t *testing.T) {
	for _, c := range []struct{ in, name, phone string }{
		{"", "", ""},
		{"李", "*", "*"},
		{"李梅", "李*", "**"},
		{"王小明", "王**", "***"},
		{"欧阳娜娜", "欧阳**", "****"},
	} {
		if got := MaskName(c.in); got != c.name {
			t.Errorf("MaskName(%q) = %q, want %q", c.in, got, c.name)
		}
	}
	if got := MaskPhone("13909710001"); got != "139****0001" {
		t.Errorf("MaskPhone = %q", got)
	}
	if got := MaskPhone("12345"); got != "*****" {
		t.Errorf("MaskPhone of a short number = %q", got)
	}
}

// TestCitizenViewHidesWhatStaffSee: no actor, note, description, query code hash, request id,
// digests; the applicant masked.
func TestCitizenViewHidesWhatStaffSee(t *testing.T) {
	sub := Submission{Kind: KindApplication, ItemCode: "MZ-001", Title: "低保申请", Description: "家中困难，内部备注",
		Applicant: &Applicant{Name: "李梅", IDNumber: "630102198506151227", Phone: "13909710001"},
		Materials: []Material{{Name: "居民身份证", Digest: strings.Repeat("a", 64), Pages: 1}}, RequestID: "r1", Actor: "窗口 3 张丽"}
	c, err := Accept(&sub, Acceptance{Number: "cd-20261203-000001", Site: "cd", At: time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC), QueryCodeHash: HashQueryCode("r1", "123456")})
	if err != nil {
		t.Fatal(err)
	}
	c.History[0].Note = "内部意见"
	b, _ := json.Marshal(c.CitizenView())
	for _, secret := range []string{"630102198506151227", "13909710001", "李梅", "张丽", "内部", "aaaa", c.QueryCodeHash, "\"r1\""} {
		if strings.Contains(string(b), secret) {
			t.Errorf("the citizen view shows %q: %s", secret, b)
		}
	}
	v := c.CitizenView()
	if v.Applicant.Name != "李*" || v.Applicant.IDNumber != "6301**********1227" || v.Applicant.Phone != "139****0001" ||
		len(v.Timeline) != 1 || v.Timeline[0].Type != EventSubmitted || v.Materials[0] != "居民身份证" || v.Status != StatusSubmitted {
		t.Fatalf("view %+v", v)
	}
}
