package node_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/govgrid/govgrid/node"
	"github.com/govgrid/govgrid/testgrid"
)

// configRequest sends a configuration change to a node's HTTP API and returns the status.
func configRequest(t *testing.T, n *node.Node, method, path, body string) int {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+n.Addrs().HTTP+"/v1/config/"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(testgrid.AsStaff(t, n, req))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// configValue reads one document in force at n: its owner and value, or status 404.
func configValue(t *testing.T, n *node.Node, path string) (owner, value string, status int) {
	t.Helper()
	var doc struct {
		Owner string `json:"owner"`
		Value any    `json:"value"`
	}
	status = testgrid.GetJSON(t, n, "/v1/config/"+path, &doc)
	return doc.Owner, fmt.Sprint(doc.Value), status
}

func TestConfigurationFlowsDownAndSurvivesACut(t *testing.T) {
	g := testgrid.New(t, fourSites)
	district, township := g.WaitLeader("cd"), g.WaitLeader("cd-dgdj")
	ngj, bgj := g.WaitLeader("cd-dgdj-ngj"), g.WaitLeader("cd-dgdj-bgj")
	waitRegistered(t, g, district, map[string]string{"cd-dgdj": "cd", "cd-dgdj-ngj": "cd-dgdj", "cd-dgdj-bgj": "cd-dgdj"}, 20*time.Second)

	if code := configRequest(t, district, "PUT", "supervision/policy", `{"yellow_card_days": 3}`); code != http.StatusOK {
		t.Fatalf("district PUT: %d", code)
	}
	if code := configRequest(t, township, "PUT", "notices/hours", `"周六上午办公"`); code != http.StatusOK {
		t.Fatalf("township PUT: %d", code)
	}
	// The same path at two levels: the township's own version is in force beneath it.
	if code := configRequest(t, district, "PUT", "notices/hours", `"工作日办公"`); code != http.StatusOK {
		t.Fatalf("district PUT: %d", code)
	}
	for _, bad := range []struct {
		n            *node.Node
		method, path string
		body         string
		want         int
	}{
		{ngj, "PUT", "notices/hours", `"x"`, http.StatusConflict}, // a community owns no documents
		{district, "PUT", "Bad Path", `1`, http.StatusBadRequest},
		{district, "PUT", "x", `{not json`, http.StatusBadRequest},
		{district, "PUT", "x", strings.Repeat(" ", 300<<10) + "1", http.StatusRequestEntityTooLarge},
	} {
		if code := configRequest(t, bad.n, bad.method, bad.path, bad.body); code != bad.want {
			t.Fatalf("%s %s at %s: %d, want %d", bad.method, bad.path, bad.n.Site(), code, bad.want)
		}
	}
	g.Eventually(20*time.Second, func() error {
		for _, n := range []*node.Node{ngj, bgj} {
			if owner, v, code := configValue(t, n, "supervision/policy"); code != http.StatusOK || owner != "cd" || !strings.Contains(v, "3") {
				return fmt.Errorf("%s: policy %s %s %d", n.Site(), owner, v, code)
			}
			if owner, v, _ := configValue(t, n, "notices/hours"); owner != "cd-dgdj" || v != "周六上午办公" {
				return fmt.Errorf("%s: hours from %s: %s", n.Site(), owner, v)
			}
		}
		return nil
	})
	// The district does not receive the township's documents.
	if owner, v, _ := configValue(t, district, "notices/hours"); owner != "cd" || v != "工作日办公" {
		t.Fatalf("district's hours: %s from %s", v, owner)
	}

	// Cut off, a community keeps what it has; healed, it catches up, removals included.
	g.Isolate(ngj.Name())
	configRequest(t, district, "PUT", "supervision/policy", `{"yellow_card_days": 2}`)
	configRequest(t, district, "DELETE", "notices/hours", "")
	g.Eventually(20*time.Second, func() error {
		if _, v, _ := configValue(t, bgj, "supervision/policy"); !strings.Contains(v, "2") {
			return fmt.Errorf("bgj's policy %s", v)
		}
		return nil
	})
	if _, v, code := configValue(t, ngj, "supervision/policy"); code != http.StatusOK || !strings.Contains(v, "3") {
		t.Fatalf("the cut-off community lost its configuration: %s %d", v, code)
	}
	g.Heal()
	g.Eventually(30*time.Second, func() error {
		if _, v, _ := configValue(t, ngj, "supervision/policy"); !strings.Contains(v, "2") {
			return fmt.Errorf("ngj's policy after healing: %s", v)
		}
		return nil
	})
	if _, _, code := configValue(t, district, "notices/hours"); code != http.StatusNotFound {
		t.Fatalf("deleted document still in force at the district: %d", code)
	}
}
