package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/govgrid/govgrid/casework"
)

func TestCaseStepSendsWhatTheStepRecords(t *testing.T) {
	f, addr := newFakeNode(t, map[string]fakeReply{
		"POST /v1/cases/" + testNumber + "/request-supplement": {http.StatusOK, `{"number":"` + testNumber + `","status":"supplement_requested","holder_site":"cd-dgdj-ngj"}`},
		"POST /v1/cases/" + testNumber + "/supplement":         {http.StatusOK, `{"number":"` + testNumber + `","status":"submitted","holder_site":"cd-dgdj-ngj"}`},
	})
	out, err := runGovgrid("case", "request-supplement", testNumber, "--missing", "户口簿,家庭收入证明", "--addr", addr)
	if err != nil || !strings.Contains(out, "已一次性告知补正") || !strings.Contains(out, "supplement_requested") {
		t.Fatalf("request-supplement: %v %q", err, out)
	}
	if _, err := runGovgrid("case", "supplement", testNumber, "--material", "户口簿:4", "--material", "家庭收入证明", "--addr", addr); err != nil {
		t.Fatal(err)
	}
	if b := f.bodies[0]; len(b["missing"].([]any)) != 2 {
		t.Errorf("request-supplement sent %v", b)
	}
	if b, _ := json.Marshal(f.bodies[1]["materials"]); string(b) != `[{"name":"户口簿","pages":4},{"name":"家庭收入证明"}]` {
		t.Errorf("supplement sent %s", b)
	}
	if _, err := runGovgrid("case", "supplement", testNumber, "--material", "户口簿:four", "--addr", addr); err == nil {
		t.Error("a material's pages that are not a number were sent")
	}
}

func TestCaseVerifyChecksTheChain(t *testing.T) {
	c, err := casework.Accept(&casework.Submission{Kind: casework.KindApplication, ItemCode: "MZ-002", Title: "特困人员救助供养申请",
		Applicant: &casework.Applicant{Name: "李梅", IDNumber: "630102198506151227", Phone: "13909710001"}, Materials: []casework.Material{}},
		casework.Acceptance{Number: testNumber, Site: "cd-dgdj-ngj", At: time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Take(casework.StepRequest{Step: casework.StepAccept, Actor: "王芳 (ngj.clerk)", Site: "cd-dgdj-ngj", At: c.UpdatedAt.Add(time.Minute)}, casework.ItemRules{}); err != nil {
		t.Fatal(err)
	}
	good, _ := json.Marshal(c)
	c.History[1].Actor = "冒名者"
	bad, _ := json.Marshal(c)
	_, addr := newFakeNode(t, map[string]fakeReply{"GET /v1/cases/" + testNumber: {http.StatusOK, string(good)}})
	if out, err := runGovgrid("case", "verify", testNumber, "--addr", addr); err != nil || !strings.Contains(out, "history verified") || !strings.Contains(out, "2 events") {
		t.Fatalf("verify a sound history: %v %q", err, out)
	}
	_, addr = newFakeNode(t, map[string]fakeReply{"GET /v1/cases/" + testNumber: {http.StatusOK, string(bad)}})
	if _, err := runGovgrid("case", "verify", testNumber, "--addr", addr); err == nil || !strings.Contains(err.Error(), "event 2") {
		t.Fatalf("verify an altered history: %v", err)
	}
}
