package sitestate

import (
	"bytes"
	"encoding/json"
	"maps"
	"reflect"
	"strings"
	"testing"

	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/replication"
	"github.com/govgrid/govgrid/tier"
	"github.com/hashicorp/raft"
)

// submitVariants are submissions that differ in what an encoding could lose: no applicant, an
// empty one, no materials, materials with digests and pages, every optional field.
func submitVariants() []*submitCommand {
	full := testSubmission(1)
	full.Description, full.DecideTier, full.Actor, full.CollectSite = "材料齐全", "district", "窗口 3", "cd-dgdj-ngj"
	full.Materials = []casework.Material{{Name: "身份证", Digest: strings.Repeat("ab", 32), Pages: 2}, {Name: "户口簿"}}
	noApplicant := testSubmission(2)
	noApplicant.Applicant = nil
	emptyApplicant := testSubmission(3)
	emptyApplicant.Applicant = &casework.Applicant{}
	noMaterials := testSubmission(4)
	noMaterials.Materials = nil
	return []*submitCommand{
		{Submission: full, Site: "cd-dgdj", Tier: tier.Township, Parent: "cd", QueryCode: "123456"},
		{Submission: noApplicant, Site: "cd-dgdj", Tier: tier.Township, Parent: "cd", QueryCode: "000001"},
		{Submission: emptyApplicant, Site: "cd-dgdj", Tier: tier.Township, Parent: "cd"},
		{Submission: noMaterials, Site: "cd-dgdj", Tier: tier.Township, Parent: "cd", QueryCode: "999999"},
	}
}

func TestSubmitCommandRoundTrips(t *testing.T) {
	for _, c := range submitVariants() {
		b, err := encodeSubmitCommand(c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeSubmitCommand(b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, c) {
			t.Errorf("decoded %+v, want %+v", got, c)
		}
	}
	if _, err := decodeSubmitCommand([]byte{0xff, 0xff}); err == nil {
		t.Error("garbage decoded")
	}
}

// TestSubmitEntriesOfEitherEncodingGiveTheSameState applies the same submissions as JSON entries
// (written by earlier versions) to one site and as protobuf entries to another: the state bytes
// must be the same, answers included.
func TestSubmitEntriesOfEitherEncodingGiveTheSameState(t *testing.T) {
	asJSON := openSite(t, "cd-dgdj", tier.Township, "cd", "")
	asPB := openSite(t, "cd-dgdj", tier.Township, "cd", "")
	accepted, refused := 0, 0
	for i, c := range submitVariants() {
		j, _ := json.Marshal(c)
		p, _ := encodeSubmitCommand(c)
		index := uint64(100 + i)
		a := asJSON.local.Apply([]*raft.Log{{Index: index, Type: raft.LogCommand, Data: replication.StampedCommand(cmdSubmitCase, j, handoffClock)}})[0].(*Answer)
		b := asPB.local.Apply([]*raft.Log{{Index: index, Type: raft.LogCommand, Data: replication.StampedCommand(cmdSubmitCasePB, p, handoffClock)}})[0].(*Answer)
		if !reflect.DeepEqual(a, b) {
			t.Errorf("submission %d: answers differ:\n%+v\n%+v", i, a, b)
		}
		if a.Err != nil {
			refused++
		} else {
			accepted++
		}
	}
	if accepted < 2 || refused < 1 {
		t.Fatalf("%d accepted and %d refused: the variants should give both", accepted, refused)
	}
	if a, b := asJSON.export(), asPB.export(); !maps.EqualFunc(a, b, bytes.Equal) {
		t.Fatalf("the two encodings gave two states: %d keys and %d", len(a), len(b))
	}
}
