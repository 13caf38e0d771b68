package node_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/govgrid/govgrid/catalog/sample"
	"github.com/govgrid/govgrid/node"
	"github.com/govgrid/govgrid/testgrid"
)

// catalogRequest sends a catalogue change to a node and returns the status and body.
func catalogRequest(t *testing.T, n *node.Node, method, path, contentType string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+n.Addrs().HTTP+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(testgrid.AsStaff(t, n, req))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestCatalogueFlowsDownWithLocalItems: the district imports the sample catalogue once (a second
// import writes nothing); every site below serves it, a township's local convenience items only
// in its own subtree, and a community cut off keeps it. A township may not add licences or
// reuse the district's codes; a community edits nothing.
func TestCatalogueFlowsDownWithLocalItems(t *testing.T) {
	g := testgrid.New(t, fourSites)
	district, township := g.WaitLeader("cd"), g.WaitLeader("cd-dgdj")
	ngj, bgj := g.WaitLeader("cd-dgdj-ngj"), g.WaitLeader("cd-dgdj-bgj")
	waitRegistered(t, g, district, map[string]string{"cd-dgdj": "cd", "cd-dgdj-ngj": "cd-dgdj", "cd-dgdj-bgj": "cd-dgdj"}, 20*time.Second)

	var res struct{ Departments, Items, Changed int }
	for i, wantChanged := range []int{90, 0} {
		code, body := catalogRequest(t, district, "POST", "/v1/catalog/import", "application/json", sample.JSON())
		if code != http.StatusOK || json.Unmarshal([]byte(body), &res) != nil || res.Items != 89 || res.Changed != wantChanged {
			t.Fatalf("import %d: %d %s, want 89 items and %d documents changed", i+1, code, body, wantChanged)
		}
	}
	type page struct {
		Items []struct {
			Code, Owner string
		} `json:"items"`
		Total int `json:"total"`
	}
	count := func(n *node.Node, query string) (int, error) {
		var p page
		if code := testgrid.GetJSON(t, n, "/v1/catalog/items?"+query, &p); code != http.StatusOK {
			return 0, fmt.Errorf("%s: search %s: %d", n.Site(), query, code)
		}
		return p.Total, nil
	}
	// The township edits once the district's catalogue (its departments) has reached it.
	g.Eventually(30*time.Second, func() error {
		for _, n := range []*node.Node{township, ngj, bgj} {
			if got, err := count(n, ""); err != nil || got != 89 {
				return fmt.Errorf("%s has %d items (%v), want 89", n.Site(), got, err)
			}
		}
		return nil
	})
	local := `{"code":"DGDJ-001","name":"老年人助餐预约","name_en":"Booking meals for the elderly","department":"MZ",
		"type":"convenience_service","mode":"immediate","accept_tiers":["community"],"decide_tier":"community",
		"legal_basis":"街道便民服务事项","materials":[],"steps":[{"name":"预约"}],"statutory_limit":{},"promised_limit":{}}`
	if code, body := catalogRequest(t, township, "PUT", "/v1/catalog/items/dgdj-001", "application/json", []byte(local)); code != http.StatusOK {
		t.Fatalf("township's local item: %d %s", code, body)
	}
	for _, bad := range []struct {
		n      *node.Node
		method string
		path   string
		body   string
		want   int
		reason string
	}{
		{township, "PUT", "/v1/catalog/items/DGDJ-002", strings.Replace(strings.Replace(local, "DGDJ-001", "DGDJ-002", 1), "convenience_service", "administrative_licence", 1), http.StatusBadRequest, "convenience services"},
		{township, "PUT", "/v1/catalog/items/MZ-010", strings.Replace(local, "DGDJ-001", "MZ-010", 1), http.StatusBadRequest, "a code of its own"},
		{ngj, "PUT", "/v1/catalog/items/NGJ-001", strings.Replace(local, "DGDJ-001", "NGJ-001", 1), http.StatusForbidden, "is a community"},
		{district, "PUT", "/v1/catalog/items/MZ-001", `{"code":"MZ-002"}`, http.StatusBadRequest, "differs from the path"},
		{district, "PUT", "/v1/catalog/items/MZ-001", `{"code":"MZ-001","colour":"red"}`, http.StatusBadRequest, "colour"},
		{district, "DELETE", "/v1/catalog/items/XX-404", ``, http.StatusNotFound, "no item XX-404"},
		{district, "POST", "/v1/catalog/import", "record,code,name\nitem,MZ-900,\n", http.StatusBadRequest, "line 2: MZ-900: name"},
	} {
		ct := "application/json"
		if strings.HasPrefix(bad.body, "record,") {
			ct = "text/csv"
		}
		if code, body := catalogRequest(t, bad.n, bad.method, bad.path, ct, []byte(bad.body)); code != bad.want || !strings.Contains(body, bad.reason) {
			t.Fatalf("%s %s at %s: %d %s, want %d naming %q", bad.method, bad.path, bad.n.Site(), code, body, bad.want, bad.reason)
		}
	}

	g.Eventually(30*time.Second, func() error {
		for n, want := range map[*node.Node]int{district: 89, township: 90, ngj: 90, bgj: 90} {
			if got, err := count(n, ""); err != nil || got != want {
				return fmt.Errorf("%s has %d items (%v), want %d", n.Site(), got, err, want)
			}
		}
		return nil
	})
	if got, _ := count(ngj, "tier=community&mode=immediate&q=助餐"); got != 1 {
		t.Fatalf("the township's local item is not found at its community: %d", got)
	}
	var notice struct {
		Code      string `json:"code"`
		Materials []struct {
			No   int    `json:"no"`
			Name string `json:"name"`
		} `json:"materials"`
		TotalFen int64 `json:"total_fen"`
	}
	if code := testgrid.GetJSON(t, bgj, "/v1/catalog/items/js-007/notice", &notice); code != http.StatusOK || notice.Code != "JS-007" || len(notice.Materials) != 3 || notice.TotalFen != 20000 {
		t.Fatalf("notice at a community: %d %+v", code, notice)
	}
	for _, q := range []string{"tier=city", "mode=fast", "type=x", "page_size=0", "page_size=501"} {
		var e any
		if code := testgrid.GetJSON(t, ngj, "/v1/catalog/items?"+q, &e); code != http.StatusBadRequest {
			t.Fatalf("search %s: %d, want 400", q, code)
		}
	}

	// Cut off, a community keeps the catalogue; healed, it catches up with a removal.
	g.Isolate(ngj.Name())
	if code, body := catalogRequest(t, district, "DELETE", "/v1/catalog/items/MZ-010", "", nil); code != http.StatusNoContent {
		t.Fatalf("delete: %d %s", code, body)
	}
	g.Eventually(20*time.Second, func() error {
		if got, _ := count(bgj, ""); got != 89 {
			return fmt.Errorf("bgj has %d items", got)
		}
		return nil
	})
	if got, err := count(ngj, ""); err != nil || got != 90 {
		t.Fatalf("the cut-off community has %d items (%v)", got, err)
	}
	g.Heal()
	g.Eventually(30*time.Second, func() error {
		if got, _ := count(ngj, ""); got != 89 {
			return fmt.Errorf("ngj has %d items after healing", got)
		}
		return nil
	})
}
