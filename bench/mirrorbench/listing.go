package mirrorbench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"time"

	"github.com/govgrid/govgrid/api"
	"github.com/govgrid/govgrid/bench/internal/benchkit"
	"github.com/govgrid/govgrid/casework"
)

// lister times subtree listings at the district over HTTP, one request at a time on a kept-alive
// connection, as an operator's console would page through them.
type lister struct {
	base        string // http://host:port of the district
	token       string // a bearer token of staff of the district (every listing is signed in)
	pageSize    int
	communities []string
	// from and to bound the cases' creation times: random starting points fall between them.
	from, to time.Time
	// started is when the district started: the slowest request's time is told from it.
	started time.Time
	client  *http.Client
}

// run times four listings, all of submitted cases in the subtree: the first ListPages pages,
// following next_page_token (then from the top again); and first pages from random points in
// time (to=<time>) filtered by kind, by holder site (one community) and by item code. The kinds
// take turns, one request each per round, so that the district's background work (compactions,
// value-log GC every minute, feed trimming) falls on all of them alike; rounds go on until each
// kind has made its count (ListPages, ListSamples) and ListFor has passed.
func (l *lister) run(ctx context.Context, cfg Config) []ListingResult {
	l.client = &http.Client{Timeout: 30 * time.Second}
	defer l.client.CloseIdleConnections()
	rng := rand.New(rand.NewPCG(1, 2))
	status := string(casework.StatusSubmitted)

	// Paging: the first pages, newest first, following the token (from the top again at the
	// end). Every case must come once.
	paging := newListing(fmt.Sprintf("by status, next_page_token followed %d pages deep", cfg.ListPages))
	seen := map[string]bool{}
	token, depth := "", 0
	page := func() {
		if depth == cfg.ListPages {
			token, depth = "", 0
		}
		depth++
		q := l.query(status)
		if token != "" {
			q.Set("page_token", token)
		} else {
			clear(seen)
		}
		resp := paging.get(l, q, func(c api.MirroredCase) error {
			if seen[c.Number] {
				return fmt.Errorf("%s listed twice while paging", c.Number)
			}
			seen[c.Number] = true
			return nil
		})
		token = ""
		if resp != nil {
			token = resp.NextPageToken
		}
	}

	type filtered struct {
		*listing
		param string
		value func() string
		check func(v string, c api.MirroredCase) bool
	}
	filters := []filtered{
		{newListing("by status and kind, first page from a random time"), "kind", func() string {
			if rng.Float64() < 0.5 {
				return string(casework.KindGrievance)
			}
			return string(casework.KindApplication)
		}, func(v string, c api.MirroredCase) bool { return string(c.Kind) == v }},
		{newListing("by status and site (one community), first page from a random time"), "site", func() string {
			return l.communities[rng.IntN(len(l.communities))]
		}, func(v string, c api.MirroredCase) bool { return c.HolderSite == v }},
		{newListing("by status and item code, first page from a random time"), "item_code", func() string {
			return items[rng.IntN(len(items))].code
		}, func(v string, c api.MirroredCase) bool { return c.ItemCode == v }},
	}
	sample := func(f filtered) {
		q := l.query(status)
		v := f.value()
		q.Set(f.param, v)
		at := l.from.Add(time.Duration(rng.Int64N(int64(l.to.Sub(l.from)) + 1)))
		q.Set("to", at.UTC().Format(time.RFC3339Nano))
		f.get(l, q, func(c api.MirroredCase) error {
			if !f.check(v, c) {
				return fmt.Errorf("%s=%s listed %s (kind %s, item %s, site %s)", f.param, v, c.Number, c.Kind, c.ItemCode, c.HolderSite)
			}
			return nil
		})
	}
	deadline := time.Now().Add(cfg.ListFor)
	for i := 0; ctx.Err() == nil; i++ {
		early := time.Now().Before(deadline)
		if !early && i >= cfg.ListPages && i >= cfg.ListSamples {
			break
		}
		if early || i < cfg.ListPages {
			page()
		}
		if early || i < cfg.ListSamples {
			for _, f := range filters {
				sample(f)
			}
		}
	}
	out := []ListingResult{paging.result()}
	for _, f := range filters {
		out = append(out, f.result())
	}
	return out
}

func (l *lister) query(status string) url.Values {
	q := url.Values{}
	q.Set("scope", "subtree")
	q.Set("status", status)
	q.Set("page_size", fmt.Sprint(l.pageSize))
	return q
}

// listing accumulates one kind of request.
type listing struct {
	res     ListingResult
	lat     []time.Duration
	slowest time.Duration
}

func newListing(name string) *listing {
	return &listing{res: ListingResult{Name: name, Target: TargetListP99}}
}

// get makes one request, times it until its body is read, and checks the answer: status 200,
// submitted cases only, each passing check, and a full page whenever a next page is announced.
// It returns nil after a failure.
func (ls *listing) get(l *lister, q url.Values, check func(api.MirroredCase) error) *api.SubtreePage {
	path := "/v1/cases?" + q.Encode()
	if ls.res.Example == "" {
		ls.res.Example = path
	}
	ls.res.Requests++
	req, err := http.NewRequest(http.MethodGet, l.base+path, nil)
	if err != nil {
		ls.fail(err)
		return nil
	}
	// Timed from here: the node's check of the token (an ed25519 verification) is part of what
	// a listing costs.
	t0 := time.Now()
	resp, err := l.client.Do(benchkit.Bearer(req, l.token))
	var body []byte
	if err == nil {
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	elapsed := time.Since(t0)
	if err != nil {
		ls.fail(err)
		return nil
	}
	if resp.StatusCode != http.StatusOK {
		ls.fail(fmt.Errorf("GET %s: %s: %.200s", path, resp.Status, body))
		return nil
	}
	ls.lat = append(ls.lat, elapsed)
	if elapsed > ls.slowest {
		ls.slowest, ls.res.SlowestAt = elapsed, t0.Sub(l.started)
	}
	var page api.SubtreePage
	if err := json.Unmarshal(body, &page); err != nil {
		ls.fail(fmt.Errorf("GET %s: undecodable answer: %w", path, err))
		return nil
	}
	ls.res.Cases += len(page.Cases)
	if page.NextPageToken != "" && len(page.Cases) < l.pageSize {
		ls.fail(fmt.Errorf("GET %s: %d cases and a next page", path, len(page.Cases)))
		return nil
	}
	for _, c := range page.Cases {
		if c.Status != casework.StatusSubmitted {
			ls.fail(fmt.Errorf("GET %s: %s has status %q", path, c.Number, c.Status))
			return nil
		}
		if err := check(c); err != nil {
			ls.fail(fmt.Errorf("GET %s: %w", path, err))
			return nil
		}
	}
	return &page
}

func (ls *listing) fail(err error) {
	if ls.res.Errors++; ls.res.FirstError == "" {
		ls.res.FirstError = err.Error()
	}
}

func (ls *listing) result() ListingResult {
	r := ls.res
	r.Latency = benchkit.Summarise(ls.lat)
	r.Met = r.Latency.Count > 0 && r.Errors == 0 && r.Latency.P99 <= r.Target
	return r
}
