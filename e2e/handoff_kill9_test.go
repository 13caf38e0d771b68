package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/govgrid/govgrid/api"
	"github.com/govgrid/govgrid/casework"
)

// submitDecided POSTs an application that the district must decide, as the bearer of token: the
// community escalates it on acceptance and the township relays it on, with no one asking.
func submitDecided(ctx context.Context, baseURL, token, title string) (string, error) {
	var m map[string]any
	_ = json.Unmarshal(submitBody(title), &m)
	m["decide_tier"] = "district"
	b, _ := json.Marshal(m)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, baseURL+"/v1/cases", bytes.NewReader(b))
	if err != nil {
		return "", err
	}
	setBearer(req, token)
	resp, err := httpClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("%d %s", resp.StatusCode, bytes.TrimSpace(body))
	}
	var c api.Case
	if err := json.Unmarshal(body, &c); err != nil || c.Number == "" {
		return "", fmt.Errorf("201 without a case: %s", body)
	}
	return c.Number, nil
}

// outboxDepth is the number of handoffs waiting at the site of the agent at baseURL.
func outboxDepth(baseURL, site string) (int, error) {
	var v api.SitesView
	if err := getJSON(baseURL+"/v1/sites", &v); err != nil {
		return 0, err
	}
	s, _ := v.Find(site)
	n := 0
	for _, o := range s.Outbox {
		n += o.Depth
	}
	return n, nil
}

// TestHandoffsSurviveKill9 escalates cases from a community through a three-node township to
// the district while the township's leader is killed with SIGKILL in the middle of its
// handoffs, and restarted. Afterwards every acknowledged case must be held by the district
// alone, with a verified history showing each hop exactly once.
func TestHandoffsSurviveKill9(t *testing.T) {
	binary(t)
	district := startAgent(t, agentSpec{Name: "h-cd-1", Site: "cd", Tier: "district"})
	join := []string{district.addrs.Gossip}
	var township []*agentProc
	for i := 1; i <= 3; i++ {
		township = append(township, startAgent(t, agentSpec{Name: fmt.Sprintf("h-dgdj-%d", i), Site: "cd-dgdj", Tier: "township",
			Parent: "cd", BootstrapExpect: 3, Join: join}))
	}
	community := startAgent(t, agentSpec{Name: "h-ngj-1", Site: "cd-dgdj-ngj", Tier: "community", Parent: "cd-dgdj", Join: join})
	waitAllHealthy(t, 30*time.Second, append([]*agentProc{district, community}, township...)...)
	waitUntil(t, 20*time.Second, "the township to register the community", func() bool {
		l, err := siteLeader(township[0].baseURL(), "cd-dgdj-ngj")
		return err == nil && l != ""
	})
	token := signInStaff(t, district)
	waitToken(t, token, 30*time.Second, append([]*agentProc{community}, township...)...)

	var (
		mu    sync.Mutex
		acked []string
	)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	const writers = 4
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				number, err := submitDecided(ctx, community.baseURL(), token, fmt.Sprintf("kill9 handoff %d-%d", w, i))
				if err != nil {
					continue // the community is not the one killed: a failure here is a retry
				}
				mu.Lock()
				acked = append(acked, number)
				mu.Unlock()
			}
		}()
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	waitUntil(t, 20*time.Second, "50 cases accepted", func() bool { return count() >= 50 })

	leader := ""
	waitUntil(t, 10*time.Second, "the township's leader", func() bool {
		l, err := siteLeader(township[0].baseURL(), "cd-dgdj")
		leader = l
		return err == nil && l != ""
	})
	victim := slices.IndexFunc(township, func(a *agentProc) bool { return a.name == leader })
	if victim < 0 {
		t.Fatalf("the township's leader %q is none of its nodes", leader)
	}
	township[victim].kill()
	before := count()
	t.Logf("killed the township's leader %s (SIGKILL) after %d cases", leader, before)
	waitUntil(t, 30*time.Second, "100 more cases accepted", func() bool { return count() >= before+100 })
	township[victim].restart()
	township[victim].waitHealthy(30 * time.Second)
	waitUntil(t, 15*time.Second, "50 more cases after the restart", func() bool { return count() >= before+150 })
	cancel()
	wg.Wait()

	// Every outbox drains ...
	waitUntil(t, 60*time.Second, "every outbox to drain", func() bool {
		for _, a := range []*agentProc{community, township[(victim+1)%3]} {
			site := map[bool]string{true: "cd-dgdj-ngj", false: "cd-dgdj"}[a == community]
			if d, err := outboxDepth(a.baseURL(), site); err != nil || d > 0 {
				return false
			}
		}
		return true
	})
	// ... and every case is at the district, once, with each hop once in its history.
	held, err := listAllCases(district.baseURL(), token)
	if err != nil {
		t.Fatal(err)
	}
	heldSet := map[string]bool{}
	for _, n := range held {
		heldSet[n] = true
	}
	for _, a := range []*agentProc{community, township[0], township[1], township[2]} {
		if left, err := listAllCases(a.baseURL(), token); err != nil || len(left) > 0 {
			t.Fatalf("%s still holds %d cases (%v): each case must have one holder", a.name, len(left), err)
		}
	}
	for _, number := range acked {
		if !heldSet[number] {
			t.Fatalf("acknowledged case %s is not held by the district", number)
		}
		status, body, err := httpGetAs(district.baseURL()+"/v1/cases/"+number, token)
		if err != nil || status != http.StatusOK {
			t.Fatalf("GET %s at the district: %d %v", number, status, err)
		}
		var c api.Case
		if err := json.Unmarshal(body, &c); err != nil {
			t.Fatal(err)
		}
		if err := c.VerifyHistory(); err != nil {
			t.Fatalf("case %s: %v", number, err)
		}
		var types []casework.EventType
		for _, e := range c.History {
			types = append(types, e.Type)
		}
		want := []casework.EventType{casework.EventSubmitted, casework.EventEscalated, casework.EventReceived, casework.EventRelayed, casework.EventReceived}
		if !slices.Equal(types, want) || c.HolderSite != "cd" || c.Transit != nil {
			t.Fatalf("case %s: holder %s, history %v; want held by cd after %v", number, c.HolderSite, types, want)
		}
	}
	// Stopping the writers cancels up to one request each: such a case may have committed
	// without its answer reaching the writer. Nothing else may be there.
	if extra := len(held) - len(acked); extra < 0 || extra > writers {
		t.Fatalf("the district holds %d cases, %d were acknowledged by %d writers", len(held), len(acked), writers)
	}
	t.Logf("%d cases escalated through a township whose leader was killed; each held once by the district", len(acked))
}
