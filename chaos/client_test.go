package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/govgrid/govgrid/api"
	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/tier"
)

// client is one clerk at one site: it submits cases, reads and moves them, over HTTP only.
type client struct {
	r    *run
	id   int
	site string
	rng  *rand.Rand
	http *http.Client
	seq  int
}

// Chances of a client's choices.
const (
	// lostAnswer is the chance that a 201 is treated as lost and the request sent again.
	lostAnswer = 0.15
	// otherNode is the chance that a retry goes through another node of the site.
	otherNode = 0.5
)

func (r *run) newClient(id int, site string) *client {
	return &client{r: r, id: id, site: site,
		rng: rand.New(rand.NewPCG(r.s.seed, uint64(id)+1)),
		// Shorter than the server's 10 s commit wait: some requests time out here and are
		// retried while the first attempt may still commit.
		http: &http.Client{Timeout: 4 * time.Second}}
}

// run works until ctx ends, then finishes the request in hand.
func (c *client) run(ctx context.Context) {
	defer c.http.CloseIdleConnections()
	for ctx.Err() == nil {
		switch x := c.rng.IntN(100); {
		case x < 50:
			c.submit()
		case x < 75:
			if n := c.r.randomKnown(c.rng); n != "" {
				c.read(n)
			}
		default:
			if n := c.r.randomKnown(c.rng); n != "" {
				c.move(n)
			}
		}
		c.pause(ctx, 30*time.Millisecond, 150*time.Millisecond)
	}
}

func (c *client) pause(ctx context.Context, lo, hi time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(lo + time.Duration(c.rng.Int64N(int64(hi-lo)+1))):
	}
}

// givingUp reports whether the clients must stop retrying: the faults ended healTimeout ago.
func (c *client) givingUp() bool {
	until := c.r.retryUntil.Load()
	return until != 0 && time.Now().UnixNano() > until
}

// submit opens a case with a new request id and sends it until it is answered (also after the
// load has stopped, until the clients give up), sometimes again after its answer, as if the
// answer had been lost.
func (c *client) submit() {
	c.seq++
	rid := fmt.Sprintf("%s.c%d.%d", c.site, c.id, c.seq)
	sub := &casework.Submission{
		Kind: casework.KindApplication, ItemCode: "GA-001", Title: "chaos " + rid,
		// No actor: the node records the signed-in account (the site's staff) as the actor.
		Description: "开具户籍证明", RequestID: rid,
		Applicant: &casework.Applicant{Name: "张三", IDNumber: "630102199001011234", Phone: "13800000000"},
		Materials: []casework.Material{{Name: "身份证复印件"}},
	}
	// Some cases must be decided above the site: they climb by themselves.
	if above := c.tiersAbove(); len(above) > 0 && c.rng.IntN(2) == 0 {
		sub.DecideTier = string(above[c.rng.IntN(len(above))])
	}
	c.r.stats.submits.Add(1)
	nodes := c.r.siteNodes(c.site)
	node := nodes[c.rng.IntN(len(nodes))]
	backoff := 50 * time.Millisecond
	lost := 0
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			if c.rng.Float64() < otherNode {
				node = nodes[c.rng.IntN(len(nodes))]
			}
		}
		call := c.r.hist.now()
		var cs casework.Case
		status, err := c.do(http.MethodPost, node, c.r.token[node], "/v1/cases", sub, &cs)
		ret := c.r.hist.now()
		switch {
		case status == http.StatusCreated && err == nil:
			c.r.hist.add(c.site, c.id, call, ret, opInput{Kind: opSubmit, RID: rid, Node: node}, opOutput{Number: cs.Number, Status: status})
			c.r.answered(rid, cs.Number, cs.QueryCode, attempt-lost)
			c.r.observe(&cs, node)
			if lost == 0 {
				c.r.stats.acked.Add(1)
			}
			if lost < 2 && c.rng.Float64() < lostAnswer {
				// The clerk's connection dropped before the receipt printed: send it again,
				// at once or a moment later (by then the case may have moved on).
				lost++
				c.r.stats.lostAnswers.Add(1)
				later := c.rng.IntN(2) == 0
				if later {
					c.pause(context.Background(), 0, 2*time.Second)
				}
				c.r.logf("client %d sends %s again as if its answer (%s, decide_tier %q) was lost%s",
					c.id, rid, cs.Number, sub.DecideTier, map[bool]string{true: ", a moment later", false: ""}[later])
				continue
			}
			return
		case status/100 == 4:
			c.r.violation("submit %s at %s answered %d: %v (a valid submission)", rid, node, status, err)
			return
		}
		if c.givingUp() {
			c.r.mu.Lock()
			c.r.unanswered = append(c.r.unanswered, fmt.Sprintf("%s (last: %d %v)", rid, status, err))
			c.r.mu.Unlock()
			return
		}
		c.r.stats.retries.Add(1)
		c.pause(context.Background(), backoff/2, backoff)
		backoff = min(2*backoff, time.Second)
	}
}

func (c *client) tiersAbove() []tier.Tier {
	switch c.r.sites[c.site].Tier {
	case tier.Community:
		return []tier.Tier{tier.Township, tier.District}
	case tier.Township:
		return []tier.Tier{tier.District}
	}
	return nil
}

// read GETs a case through any node of the grid and returns it when found.
func (c *client) read(number string) *casework.Case {
	c.r.stats.reads.Add(1)
	node := c.r.nodes[c.rng.IntN(len(c.r.nodes))]
	origin, _, _, _ := casework.ParseNumber(number)
	call := c.r.hist.now()
	var cs casework.Case
	status, err := c.do(http.MethodGet, node, c.r.readToken, "/v1/cases/"+number, nil, &cs)
	ret := c.r.hist.now()
	in := opInput{Kind: opGet, Number: number, Node: node}
	switch {
	case status == http.StatusOK && err == nil:
		if cs.Number != number {
			c.r.violation("GET %s at %s answered case %s", number, node, cs.Number)
			return nil
		}
		c.r.hist.add(origin, c.id, call, ret, in, opOutput{Found: true, Version: cs.Version, Holder: cs.HolderSite, Status: status})
		c.r.observe(&cs, node)
		return &cs
	case status == http.StatusNotFound:
		c.r.stats.reads404.Add(1)
		c.r.hist.add(origin, c.id, call, ret, in, opOutput{Status: status})
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		c.r.signInRefused("GET %s at %s: %v", number, node, err)
	}
	return nil
}

// move reads where a case is and, if it is not in transit, moves it one step along the tree
// through a node of the site that holds it.
func (c *client) move(number string) {
	cs := c.read(number)
	if cs == nil || cs.Transit != nil {
		return
	}
	holder := cs.HolderSite
	site, ok := c.r.sites[holder]
	if !ok {
		c.r.violation("GET %s shows holder %q, not a site of the grid", number, holder)
		return
	}
	var choices []api.MoveRequest
	var verbs []string
	add := func(verb, to string) {
		verbs = append(verbs, verb)
		choices = append(choices, api.MoveRequest{ToSite: to})
	}
	from := cs.CameFrom()
	if site.Parent != "" {
		if from != "" && from != site.Parent {
			add(string(casework.MoveRelay), "")
		} else {
			add(string(casework.MoveEscalate), "")
		}
	}
	if kids := c.r.children(holder); len(kids) > 0 {
		add(string(casework.MoveHandDown), kids[c.rng.IntN(len(kids))])
	}
	if from != "" {
		add(string(casework.MoveReturn), "")
	}
	if len(choices) == 0 {
		return
	}
	i := c.rng.IntN(len(choices))
	verb, body := verbs[i], choices[i]
	body.Reason = "chaos " + verb // the actor is the signed-in account, whatever the body says
	nodes := c.r.siteNodes(holder)
	node := nodes[c.rng.IntN(len(nodes))]
	origin, _, _, _ := casework.ParseNumber(number)
	c.r.stats.moves.Add(1)
	call := c.r.hist.now()
	var moved casework.Case
	status, err := c.do(http.MethodPost, node, c.r.token[node], "/v1/cases/"+number+"/"+verb, body, &moved)
	ret := c.r.hist.now()
	in := opInput{Kind: opMove, Number: number, Verb: verb, Node: node}
	switch {
	case status == http.StatusAccepted && err == nil:
		c.r.stats.movesDone.Add(1)
		if moved.Number != number || moved.Transit == nil {
			c.r.violation("%s %s at %s answered 202 with case %s, transit %+v", verb, number, node, moved.Number, moved.Transit)
			return
		}
		c.r.hist.add(origin, c.id, call, ret, in, opOutput{Version: moved.Version, Status: status})
		c.r.observe(&moved, node)
		c.r.logf("client %d: %s %s at %s -> v%d, on its way to %s", c.id, verb, number, node, moved.Version, moved.Transit.To)
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		c.r.signInRefused("%s %s at %s: %v", verb, number, node, err)
	case status/100 == 4:
		// The case moved on or is locked since it was read, or this node's site does not
		// hold it: refused, nothing changed.
		c.r.stats.movesRefused.Add(1)
		c.r.hist.add(origin, c.id, call, ret, in, opOutput{Refused: true, Status: status})
	}
}

// do sends a request to a node, with token as its bearer, and decodes a 2xx answer into out.
// The status is 0 when there was no answer (refused connection, timeout); err then says why,
// and otherwise carries the body of an answer that is not 2xx, or why a 2xx one did not
// decode. 5xx answers are counted.
func (c *client) do(method, node, token, path string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://"+c.r.addr[node]+path, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.http.Do(req)
	if err != nil {
		c.r.stats.noAnswer.Add(1)
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		c.r.stats.noAnswer.Add(1)
		return 0, err
	}
	switch {
	case resp.StatusCode/100 == 2:
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("undecodable %d answer: %v: %.200s", resp.StatusCode, err, data)
		}
		return resp.StatusCode, nil
	case resp.StatusCode/100 == 5:
		c.r.stats.serverErrors.Add(1)
	}
	return resp.StatusCode, fmt.Errorf("%s: %.300s", resp.Status, data)
}
