package sitestate

import (
	"encoding/json"
	"strings"
	"testing"
)

func (s *site) putConfig(path, value string, del bool) *Answer {
	s.t.Helper()
	return s.apply(cmdConfigPut, &configPutCommand{Owner: s.code, Path: path, Value: json.RawMessage(value), Delete: del})
}

func TestConfigFlowsDownByOwnerVersion(t *testing.T) {
	district, township, community := newSite(t, "cd"), newSite(t, "cd-dgdj"), newSite(t, "cd-dgdj-ngj")
	for _, p := range []struct{ path, value string }{
		{"catalog/items/ga-001", `{"name": "户籍证明"}`},
		{"calendar/2026", `{"holidays": ["2026-10-01"]}`},
		{"catalog/items/ga-001", `{"name":"户籍证明（更新）"}`},
	} {
		if res := district.putConfig(p.path, p.value, false); res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	if res := township.putConfig("notices/street", `"本街道周六不办公"`, false); res.Err != nil {
		t.Fatal(res.Err)
	}
	// Bad changes are refused and change nothing.
	before := district.export()
	for _, bad := range []struct{ path, value string }{{"Bad Path", `1`}, {"a//b", `1`}, {"", `1`}, {"/root", `1`}} {
		if res := district.putConfig(bad.path, bad.value, false); res.Err == nil {
			t.Fatalf("put %q %q accepted", bad.path, bad.value)
		}
	}
	assertStateUnchanged(t, district, before)

	var syncDown func(parent, child *site)
	syncDown = func(parent, child *site) {
		t.Helper()
		known, err := child.st.ConfigVersions()
		if err != nil {
			t.Fatal(err)
		}
		docs, err := parent.st.ConfigSince(known, 2) // small pages: several rounds
		if err != nil {
			t.Fatal(err)
		}
		if len(docs) == 0 {
			return
		}
		if res := child.apply(cmdConfigSync, &configSyncCommand{Docs: docs}); res.Err != nil {
			t.Fatal(res.Err)
		}
		syncDown(parent, child)
	}
	syncDown(district, township)
	syncDown(township, community)
	docs, err := community.st.Config()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, d := range docs {
		got[d.Owner+":"+d.Path] = string(d.Value)
	}
	want := map[string]string{
		"cd:catalog/items/ga-001": `{"name":"户籍证明（更新）"}`,
		"cd:calendar/2026":        `{"holidays":["2026-10-01"]}`,
		"cd-dgdj:notices/street":  `"本街道周六不办公"`,
	}
	if len(got) != len(want) {
		t.Fatalf("community has %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("community has %s = %s, want %s", k, got[k], v)
		}
	}
	v, _ := community.st.ConfigVersions()
	if v["cd"] != 3 || v["cd-dgdj"] != 1 {
		t.Fatalf("community's versions %v", v)
	}
	// A deletion flows down too, and replaying a sync changes nothing.
	district.putConfig("calendar/2026", "", true)
	syncDown(district, township)
	syncDown(township, community)
	state := community.export()
	community.apply(cmdConfigSync, &configSyncCommand{Docs: docs})
	assertStateUnchanged(t, community, state)
	docs, _ = community.st.Config()
	for _, d := range docs {
		if d.Path == "calendar/2026" && !d.Deleted {
			t.Fatal("deletion did not reach the community")
		}
	}
}

// TestConfigPutManyIsAllOrNothing: the documents of one change get consecutive versions in one
// command; one bad document refuses the lot.
func TestConfigPutManyIsAllOrNothing(t *testing.T) {
	s := newSite(t, "cd")
	res := s.apply(cmdConfigPutMany, &configPutManyCommand{Owner: "cd", Changes: []ConfigChange{
		{Path: "catalog/items/a", Value: json.RawMessage(`{"x": 1}`)}, {Path: "catalog/items/b", Value: json.RawMessage(`2`)}}})
	if res.Err != nil || len(res.Configs) != 2 || res.Configs[0].Version != 1 || res.Configs[1].Version != 2 || string(res.Configs[0].Value) != `{"x":1}` {
		t.Fatalf("put many: %+v", res)
	}
	before := s.export()
	for _, bad := range [][]ConfigChange{
		{{Path: "catalog/items/c", Value: json.RawMessage(`3`)}, {Path: "Bad Path", Value: json.RawMessage(`4`)}},
		{{Path: "catalog/items/c", Value: json.RawMessage(`3`)}, {Path: "catalog/items/d", Value: json.RawMessage(`"` + strings.Repeat("a", MaxConfigValue) + `"`)}},
		nil,
	} {
		if res := s.apply(cmdConfigPutMany, &configPutManyCommand{Owner: "cd", Changes: bad}); res.Err == nil || res.Err.Code != CodeInvalid {
			t.Fatalf("%v: %+v, want a refusal", bad, res)
		}
	}
	assertStateUnchanged(t, s, before)
	if v, err := s.st.ConfigVersions(); err != nil || v["cd"] != 2 {
		t.Fatalf("versions %v %v", v, err)
	}
}

// TestConfigCreateRefusesAnExistingDocument: a create of a document the owner has is a conflict
// and writes nothing; after a removal the path can be created again.
func TestConfigCreateRefusesAnExistingDocument(t *testing.T) {
	s := newSite(t, "cd")
	create := func(value string) *Answer {
		return s.apply(cmdConfigPutMany, &configPutManyCommand{Owner: "cd", Changes: []ConfigChange{{Path: "accounts/admin", Value: json.RawMessage(value), Create: true}}})
	}
	if res := create(`{"user":"admin","n":1}`); res.Err != nil {
		t.Fatal(res.Err)
	}
	before := s.export()
	if res := create(`{"user":"admin","n":2}`); res.Err == nil || res.Err.Code != CodeConflict {
		t.Fatalf("a second create: %+v, want a conflict", res)
	}
	assertStateUnchanged(t, s, before)
	if res := s.apply(cmdConfigPut, &configPutCommand{Owner: "cd", Path: "accounts/admin", Delete: true}); res.Err != nil {
		t.Fatal(res.Err)
	}
	if res := create(`{"user":"admin","n":3}`); res.Err != nil {
		t.Fatalf("a create after the removal: %v", res.Err)
	}
}
