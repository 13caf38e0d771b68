package testgrid

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/govgrid/govgrid/api"
	"github.com/govgrid/govgrid/auth"
	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/node"
)

// The checks of the fault tests of issue 10, shared by the in-process grid (silent cuts made
// with Blackhole) and the compose grid in deploy/ (iptables and tc in the containers): where
// the cases accepted during a fault must end up once the link is back (Settlement), and what a
// parent must say about a child's feed while it hears nothing (FeedStatus).

// FeedHeardWindow is how long a parent may go without hearing anything from a child's feed
// (an entry or a heartbeat; the node sends one every 2 s) and still report a known lag. Past
// it, GET /v1/sites must say the lag is unknown (issue 10, point 2: "within seconds"; five
// heartbeats here).
const FeedHeardWindow = 10 * time.Second

// Getter fetches path from one node's HTTP API and returns the status code and the body.
type Getter func(path string) (status int, body []byte, err error)

// NodeGetter is the Getter of an in-process node, as the harness's staff (StaffToken: signed in
// on the first request).
func NodeGetter(n *node.Node) Getter {
	base := "http://" + n.Addrs().HTTP
	return func(path string) (int, []byte, error) {
		tok, ok := staffTokens.Load(n)
		if !ok {
			t, err := signIn(n, n.Site(), n, StaffUser(n.Site()), auth.Roles)
			if err != nil {
				return 0, nil, err
			}
			tok, _ = staffTokens.LoadOrStore(n, t)
		}
		return TokenGetter(base, tok.(string))(path)
	}
}

// URLGetter is the Getter of the HTTP API at base ("http://127.0.0.1:18180"), each request
// bounded by 5 s, without a token (the grid's shape: /v1/sites, /v1/members, /v1/health).
func URLGetter(base string) Getter { return TokenGetter(base, "") }

// TokenGetter is URLGetter with a bearer token ("" sends none).
func TokenGetter(base, token string) Getter {
	client := &http.Client{Timeout: 5 * time.Second}
	return func(path string) (int, []byte, error) {
		req, err := http.NewRequest(http.MethodGet, base+path, nil)
		if err != nil {
			return 0, nil, err
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return resp.StatusCode, body, err
	}
}

// FeedStatus is a child site's feed as its parent's GET /v1/sites shows it (the site's
// "feed", api.FeedView), with the checks of issue 10. Issue 10 asks for heard_at, stream_up
// and lag_known (see api.FeedView): a node that does not serve stream_up and lag_known fails
// every check below, naming them, and lag_entries and lag_seconds must be null (or absent),
// never 0, while lag_known is false: the parent does not know how far behind it is.
type FeedStatus struct {
	api.FeedView

	raw json.RawMessage // as served
}

// ChildFeed reads child's feed from GET /v1/sites at a node of its parent.
func ChildFeed(parent Getter, child string) (*FeedStatus, error) {
	status, body, err := parent("/v1/sites")
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("GET /v1/sites: %d %s", status, body)
	}
	// The feed is kept as served, to tell a field the node left out from one it sent as false.
	var tree struct {
		Sites []struct {
			Site string          `json:"site"`
			Feed json.RawMessage `json:"feed"`
		} `json:"sites"`
	}
	if err := json.Unmarshal(body, &tree); err != nil {
		return nil, fmt.Errorf("GET /v1/sites: %w", err)
	}
	for _, s := range tree.Sites {
		if s.Site != child {
			continue
		}
		if len(s.Feed) == 0 || string(s.Feed) == "null" {
			return nil, fmt.Errorf("GET /v1/sites shows no feed for %s", child)
		}
		f := &FeedStatus{raw: s.Feed}
		if err := json.Unmarshal(s.Feed, &f.FeedView); err != nil {
			return nil, fmt.Errorf("GET /v1/sites: %s's feed: %w", child, err)
		}
		return f, nil
	}
	return nil, fmt.Errorf("GET /v1/sites does not list %s", child)
}

// String is the feed as the node served it, for logs.
func (f *FeedStatus) String() string {
	if f.raw != nil {
		return string(f.raw)
	}
	b, _ := json.Marshal(f.FeedView)
	return string(b)
}

// unserved returns those of keys that the node left out of the feed, or sent as null. A
// FeedStatus not read from a node (no raw answer) serves every field of api.FeedView.
func (f *FeedStatus) unserved(keys ...string) []string {
	if f.raw == nil {
		return nil
	}
	var served map[string]json.RawMessage
	_ = json.Unmarshal(f.raw, &served)
	var out []string
	for _, k := range keys {
		if v, ok := served[k]; !ok || string(v) == "null" {
			out = append(out, k)
		}
	}
	return out
}

// Honest reports whether the feed tells the truth at time now: the fields issue 10 asks for
// are there, and a lag is given as known only while the child was heard from within
// FeedHeardWindow; an unknown lag is null, not 0. It holds at every moment, cut or not.
func (f *FeedStatus) Honest(now time.Time) error {
	if missing := f.unserved("stream_up", "lag_known"); len(missing) > 0 {
		return fmt.Errorf("feed lacks %s (issue 10: heard_at, stream_up, lag_known; lag null when not known): %s",
			strings.Join(missing, ", "), f)
	}
	if f.LagKnown {
		if f.HeardAt == nil || now.Sub(*f.HeardAt) > FeedHeardWindow {
			return fmt.Errorf("feed claims a known lag though the child was last heard %s (window %s): %s", f.heardAgo(now), FeedHeardWindow, f)
		}
		if f.LagEntries == nil || f.LagSeconds == nil {
			return fmt.Errorf("feed says the lag is known but gives none: %s", f)
		}
		return nil
	}
	if f.LagEntries != nil || f.LagSeconds != nil {
		return fmt.Errorf("feed says the lag is unknown but gives one (it must be null): %s", f)
	}
	return nil
}

// ReportsSilence reports whether the feed shows, at now, a child not heard from since cutAt:
// honest, the stream down, the lag unknown, and heard_at no later than the cut (a second's
// grace for what was on the wire).
func (f *FeedStatus) ReportsSilence(cutAt, now time.Time) error {
	if err := f.Honest(now); err != nil {
		return err
	}
	switch {
	case f.StreamUp:
		return fmt.Errorf("feed shows the stream up %s after a silent cut: %s", now.Sub(cutAt).Round(time.Second), f)
	case f.LagKnown:
		return fmt.Errorf("feed shows a known lag %s after a silent cut: %s", now.Sub(cutAt).Round(time.Second), f)
	case f.HeardAt == nil:
		return fmt.Errorf("feed has no heard_at though the child was heard before the cut: %s", f)
	case f.HeardAt.After(cutAt.Add(time.Second)):
		return fmt.Errorf("feed says the child was heard at %s, after the cut at %s: %s",
			f.HeardAt.Format(time.RFC3339Nano), cutAt.Format(time.RFC3339Nano), f)
	}
	return nil
}

// CaughtUp reports whether the feed shows, at now, the child heard and fully mirrored.
func (f *FeedStatus) CaughtUp(now time.Time) error {
	if err := f.Honest(now); err != nil {
		return err
	}
	// Honest holds: a known lag comes with its entries.
	if !f.StreamUp || !f.LagKnown || *f.LagEntries != 0 || f.Cursor != f.Head {
		return fmt.Errorf("feed not caught up: %s", f)
	}
	return nil
}

func (f *FeedStatus) heardAgo(now time.Time) string {
	if f.HeardAt == nil {
		return "never"
	}
	return now.Sub(*f.HeardAt).Round(time.Millisecond).String() + " ago"
}

// Settlement says where the cases a child site accepted during a fault must be once the link
// is back: each in the subtree listing of every ancestor exactly once, with its holder; each
// escalated one held by the parent exactly once, not in transit, received there once.
type Settlement struct {
	// Child accepted the cases; Parent is its parent site, where escalated cases go.
	Child, Parent string
	// Accepted are the numbers of every case accepted at the child, Escalated those of them
	// that were escalated.
	Accepted, Escalated []string
	// Ancestors are a Getter at a node of the parent and of each site above it, by site.
	Ancestors map[string]Getter
}

// Check returns nil when every case is where it must be, or everything that is not.
func (s Settlement) Check() error {
	escalated := map[string]bool{}
	for _, n := range s.Escalated {
		escalated[n] = true
	}
	var problems []error
	for _, site := range sortedKeys(s.Ancestors) {
		listed, err := listAll(s.Ancestors[site], "subtree")
		if err != nil {
			problems = append(problems, fmt.Errorf("%s: %w", site, err))
			continue
		}
		var wrong []string
		for _, n := range s.Accepted {
			want := s.Child
			if escalated[n] {
				want = s.Parent
			}
			if err := once(listed[n], n, want); err != nil {
				wrong = append(wrong, err.Error())
			}
		}
		if len(wrong) > 0 {
			problems = append(problems, fmt.Errorf("%s's subtree listing, %d of %d cases wrong: %s", site, len(wrong), len(s.Accepted), strings.Join(wrong, "; ")))
		}
	}
	parent := s.Ancestors[s.Parent]
	if parent == nil {
		return errors.New("settlement: no getter for the parent site")
	}
	local, err := listAll(parent, "local")
	if err != nil {
		return errors.Join(append(problems, fmt.Errorf("%s: %w", s.Parent, err))...)
	}
	for _, n := range s.Escalated {
		if err := once(local[n], n, s.Parent); err != nil {
			problems = append(problems, fmt.Errorf("escalated, %s's own cases: %w", s.Parent, err))
			continue
		}
		status, body, err := parent("/v1/cases/" + url.PathEscape(n))
		if err != nil || status != http.StatusOK {
			problems = append(problems, fmt.Errorf("GET /v1/cases/%s at %s: %d %v %s", n, s.Parent, status, err, body))
			continue
		}
		var c api.Case
		if err := json.Unmarshal(body, &c); err != nil {
			problems = append(problems, err)
			continue
		}
		count := map[casework.EventType]int{}
		for _, e := range c.History {
			count[e.Type]++
		}
		if count[casework.EventEscalated] != 1 || count[casework.EventReceived] != 1 {
			problems = append(problems, fmt.Errorf("%s at %s: history has %d escalated and %d received events, want one each", n, s.Parent, count[casework.EventEscalated], count[casework.EventReceived]))
		}
	}
	return errors.Join(problems...)
}

func sortedKeys(m map[string]Getter) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// once checks that a number is listed exactly once, held by holder, not in transit.
func once(copies []api.CaseSummary, number, holder string) error {
	switch {
	case len(copies) == 0:
		return fmt.Errorf("%s missing", number)
	case len(copies) > 1:
		return fmt.Errorf("%s listed %d times", number, len(copies))
	case copies[0].HolderSite != holder:
		return fmt.Errorf("%s held by %s, want %s", number, copies[0].HolderSite, holder)
	case copies[0].Transit != nil:
		return fmt.Errorf("%s still in transit: %+v", number, *copies[0].Transit)
	}
	return nil
}

// listAll reads every page of GET /v1/cases?scope=scope, by number. A subtree listing's cases
// are read as summaries: where their copies came from does not matter here.
func listAll(get Getter, scope string) (map[string][]api.CaseSummary, error) {
	out := map[string][]api.CaseSummary{}
	token := ""
	for range 1000 {
		path := "/v1/cases?scope=" + scope + "&page_size=500"
		if token != "" {
			path += "&page_token=" + url.QueryEscape(token)
		}
		status, body, err := get(path)
		if err != nil {
			return nil, fmt.Errorf("GET %s: %w", path, err)
		}
		if status != http.StatusOK {
			return nil, fmt.Errorf("GET %s: %d %s", path, status, body)
		}
		var page api.CasePage
		if err := json.Unmarshal(body, &page); err != nil {
			return nil, fmt.Errorf("GET %s: %w", path, err)
		}
		for _, c := range page.Cases {
			out[c.Number] = append(out[c.Number], c)
		}
		if token = page.NextPageToken; token == "" {
			return out, nil
		}
	}
	return nil, errors.New("more than 1000 pages")
}

// FeedSilenceDeadline is how soon after a cut begins the parent must report the child's feed
// silent (FeedStatus.ReportsSilence): FeedHeardWindow, and a few seconds to notice.
const FeedSilenceDeadline = FeedHeardWindow + 5*time.Second

// FeedWatch is what a parent said about a child's feed while a fault lasted (WatchFeed).
type FeedWatch struct {
	// Samples is how many answers were read.
	Samples int
	// SilentAfter is how long after the fault began the feed first reported the child
	// silent; zero if it never did.
	SilentAfter time.Duration
	// NotSilent is the last reason the feed did not report silence (nil once it did and kept
	// doing so); Dishonest the first answer that was not honest; Err the first failure to
	// read GET /v1/sites.
	NotSilent, Dishonest, Err error
}

// WatchFeed reads the parent's view of child's feed every 250 ms from now until the fault
// that began at since is length old, and says what it showed.
func WatchFeed(parent Getter, child string, since time.Time, length time.Duration) FeedWatch {
	var w FeedWatch
	for time.Since(since) < length {
		now := time.Now()
		f, err := ChildFeed(parent, child)
		if err != nil {
			if w.Err == nil {
				w.Err = err
			}
		} else {
			w.Samples++
			if err := f.Honest(now); err != nil && w.Dishonest == nil {
				w.Dishonest = fmt.Errorf("%s into the fault: %w", now.Sub(since).Round(time.Millisecond), err)
			}
			w.NotSilent = f.ReportsSilence(since, now)
			if w.NotSilent == nil && w.SilentAfter == 0 {
				w.SilentAfter = now.Sub(since)
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	return w
}

// HonestyProblem is nil when every answer was read and honest.
func (w FeedWatch) HonestyProblem() error {
	switch {
	case w.Err != nil:
		return w.Err
	case w.Samples == 0:
		return errors.New("no answer read")
	}
	return w.Dishonest
}

// SilenceProblem is nil when every answer was honest and the feed reported the child silent
// within FeedSilenceDeadline, and still did at the end.
func (w FeedWatch) SilenceProblem() error {
	if err := w.HonestyProblem(); err != nil {
		return err
	}
	switch {
	case w.SilentAfter == 0:
		return fmt.Errorf("never reported the child silent: %w", w.NotSilent)
	case w.SilentAfter > FeedSilenceDeadline:
		return fmt.Errorf("reported the child silent only %s into the cut (deadline %s)", w.SilentAfter.Round(time.Millisecond), FeedSilenceDeadline)
	case w.NotSilent != nil:
		return fmt.Errorf("reported the child silent %s into the cut, but no longer at its end: %w", w.SilentAfter.Round(time.Millisecond), w.NotSilent)
	}
	return nil
}
