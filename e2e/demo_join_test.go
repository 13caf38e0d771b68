package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/govgrid/govgrid/api"
)

// checkRetryAfterTheCaseLeft is the first defect of issue 9, tried as a new user would: a case
// submitted with a request id at a community and decided at the township climbs there at once;
// the same POST again (a client that lost the first answer) must answer with the same case and
// the same query code, and the community must go on serving. The requests carry token, of a
// member of the community's staff (who reads the case at the township: it began at the
// community).
func checkRetryAfterTheCaseLeft(t *testing.T, communityURL, token, township string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{
		"kind": "grievance", "title": "重试测试", "decide_tier": "township", "request_id": "retry-test-1",
		"applicant": map[string]string{"name": "李梅", "id_number": "630102198506151227", "phone": "13909710001"},
		"materials": []any{},
	})
	post := func() (int, api.Case) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, communityURL+"/v1/cases", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		setBearer(req, token)
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Fatalf("POST /v1/cases: %v", err)
		}
		defer resp.Body.Close()
		var c api.Case
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode/100 == 2 {
			if err := json.Unmarshal(b, &c); err != nil {
				t.Fatalf("POST /v1/cases: %d %s", resp.StatusCode, b)
			}
		}
		return resp.StatusCode, c
	}
	status, first := post()
	if status != http.StatusCreated || first.QueryCode == "" {
		t.Fatalf("first POST: %d %+v", status, first)
	}
	waitUntil(t, 20*time.Second, "case "+first.Number+" to climb to "+township, func() bool {
		_, c, err := getCase(communityURL, token, first.Number)
		return err == nil && c.HolderSite == township
	})
	status, again := post()
	if status/100 != 2 || again.Number != first.Number || again.QueryCode != first.QueryCode {
		t.Fatalf("the retry answered %d %+v, want the first case %s with its code", status, again, first.Number)
	}
	if again.HolderSite != township {
		t.Errorf("the retry shows the case held by %q, want %s where it is now", again.HolderSite, township)
	}
	if status, body, err := httpGet(communityURL + "/v1/health"); err != nil || status != http.StatusOK {
		t.Fatalf("the community after the retry: GET /v1/health %d %s %v", status, body, err)
	}
}

// checkDemoCanBeJoined runs the "add a community" command that the demo printed, and waits until
// the district lists the new site under its township.
func checkDemoCanBeJoined(t *testing.T, logPath, districtURL string) {
	t.Helper()
	var line string
	waitUntil(t, 10*time.Second, "the demo's Try: lines", func() bool {
		f, err := os.Open(logPath)
		if err != nil {
			return false
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if l := strings.TrimSpace(sc.Text()); strings.Contains(l, " agent --node cd-byl-xc-1 ") {
				line = l
				return true
			}
		}
		return false
	})
	args := strings.Fields(line)
	if !strings.HasSuffix(args[0], "govgrid") || args[1] != "agent" {
		t.Fatalf("the printed command does not start an agent: %q", line)
	}
	logf, err := os.Create(logPath + ".joiner")
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(binary(t), args[1:]...)
	cmd.Env = agentEnv(nil)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath + ".joiner")
			t.Logf("----- the joining community's log -----\n%s----- end -----", b)
		}
	}()
	waitUntil(t, 60*time.Second, "the district to list cd-byl-xc under cd-byl", func() bool {
		var v api.SitesView
		if err := getJSON(districtURL+"/v1/sites", &v); err != nil {
			return false
		}
		for _, s := range v.Sites {
			if s.Site == "cd-byl-xc" && s.Registered && s.Parent == "cd-byl" && s.Health == "healthy" {
				return true
			}
		}
		return false
	})
}

// checkGridJSONNamesTheGrid checks what a joining node needs from grid.json (g, as
// waitGridJSON read it): the grid's label and each node's Raft address.
func checkGridJSONNamesTheGrid(t *testing.T, g gridFile) {
	t.Helper()
	if g.Grid == "" {
		t.Errorf("grid.json names no grid (the gossip label a joining node needs): %+v", g)
	}
	for _, n := range g.Nodes {
		if n.Raft == "" {
			t.Errorf("grid.json: node %s has no raft address", n.Node)
		}
	}
}
