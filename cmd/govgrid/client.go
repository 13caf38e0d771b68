package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/govgrid/govgrid/api"
	"github.com/spf13/cobra"
)

// addrFlag adds --addr (default $GOVGRID_ADDR, else 127.0.0.1:8080): a node's HTTP address, and
// --token.
func addrFlag(cmd *cobra.Command) *string {
	def := os.Getenv("GOVGRID_ADDR")
	if def == "" {
		def = "127.0.0.1:8080"
	}
	// Every command that talks to a node may carry a sign-in token.
	cmd.PersistentFlags().StringVar(&tokenFlag, "token", "", "a sign-in `TOKEN` for the request (default: GOVGRID_TOKEN, else the one govgrid login kept)")
	cmd.PersistentFlags().StringVar(&caCertFlag, "ca-cert", os.Getenv("GOVGRID_CA_CERT"),
		"PEM `FILE` of the CA that signed the node's HTTPS certificate (for --addr https://...; or GOVGRID_CA_CERT)")
	cmd.PersistentFlags().StringVar(&operatorKeyFlag, "operator-key", os.Getenv("GOVGRID_OPERATOR_KEY"),
		"the node's operator key `FILE` (DATA_DIR/operator.key, or GOVGRID_OPERATOR_KEY): administer the node on this host without signing in (backups from cron, leave)")
	return cmd.PersistentFlags().String("addr", def, "HTTP address of any node (or GOVGRID_ADDR)")
}

var httpClient = &http.Client{Timeout: 15 * time.Second}

// call sends a request to a node and decodes a JSON answer into out; a non-2xx answer becomes
// an error carrying the node's message.
func call(addr, method, path string, body, out any) error {
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			return err
		}
	}
	return callRaw(addr, method, path, "application/json", b, out)
}

// callRaw is call with the body's bytes and content type given.
func callRaw(addr, method, path, contentType string, body []byte, out any) error {
	authz, err := authorization()
	if err != nil {
		return err
	}
	return callWith(addr, method, path, contentType, body, out, authz)
}

// callAs is callRaw with the token given ("" sends none).
func callAs(addr, method, path, contentType string, body []byte, out any, token string) error {
	if token != "" {
		token = "Bearer " + token
	}
	return callWith(addr, method, path, contentType, body, out, token)
}

// callWith is callRaw with the Authorization header given ("" sends none).
func callWith(addr, method, path, contentType string, body []byte, out any, authz string) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, baseURL(addr)+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", contentType)
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	client, err := withCA(httpClient)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return newAPIError(method, path, resp, data)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(data, out)
}

// baseURL is a node's address as a URL: http:// unless the address names its scheme.
func baseURL(addr string) string {
	if !strings.Contains(addr, "://") {
		return "http://" + addr
	}
	return addr
}

// apiError is a non-2xx answer of a node: its status and the code, message and fields of its
// JSON error body (api.ErrorBody), when it sent one.
type apiError struct {
	Method, Path string
	Status       int
	StatusText   string // "409 Conflict"
	api.ErrorDetail
}

// newAPIError is the error of resp, a non-2xx answer to method path whose body is data.
func newAPIError(method, path string, resp *http.Response, data []byte) *apiError {
	e := &apiError{Method: method, Path: path, Status: resp.StatusCode, StatusText: resp.Status}
	var body api.ErrorBody
	if json.Unmarshal(data, &body) == nil {
		e.ErrorDetail = body.Error
	}
	return e
}

func (e *apiError) Error() string {
	if e.Message != "" {
		return fmt.Sprintf("%s %s: %s (%d)", e.Method, e.Path, e.Message, e.Status)
	}
	return fmt.Sprintf("%s %s: %s", e.Method, e.Path, e.StatusText)
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func newMembersCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "members", Short: "List the grid's nodes as gossip sees them", Args: cobra.NoArgs}
	addr := addrFlag(cmd)
	cmd.RunE = func(*cobra.Command, []string) error {
		var out api.MembersView
		if err := call(*addr, "GET", "/v1/members", nil, &out); err != nil {
			return err
		}
		fmt.Printf("%-16s %-12s %-10s %-8s %-22s %s\n", "NODE", "SITE", "TIER", "STATUS", "GOSSIP", "HTTP")
		for _, m := range out.Members {
			fmt.Printf("%-16s %-12s %-10s %-8s %-22s %s\n", m.Name, m.Site, m.Tier, m.Status, m.Addr, m.HTTP)
		}
		return nil
	}
	return cmd
}

func newSitesCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "sites", Short: "Show the site tree with each site's health", Args: cobra.NoArgs}
	addr := addrFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		var out api.SitesView
		if err := call(*addr, "GET", "/v1/sites", nil, &out); err != nil {
			return err
		}
		printSiteTree(cmd.OutOrStdout(), out.Sites, time.Now())
		return nil
	}
	return cmd
}

// printSiteTree prints one line per site, children indented under their parent:
//
//	cd-dgdj [township] healthy: dgdj-1*(alive) | 待发 outbox: cd=2 (oldest 4s) | 已停用 retired: 合并
//	  cd-dgdj-ngj [community] healthy: ngj-1*(alive) | 镜像 feed: lag 3 (2s)
//
// The leader has a *; the outbox and retired parts appear only when there is something to
// show, the feed part on the answering site's children (see feedLag). now is the time the
// answer came, for how long ago a silent child was heard.
func printSiteTree(w io.Writer, sites []api.SiteView, now time.Time) {
	children := map[string][]int{}
	var roots []int
	known := map[string]bool{}
	for _, s := range sites {
		known[s.Site] = true
	}
	for i, s := range sites {
		if s.Parent == "" || !known[s.Parent] {
			roots = append(roots, i)
		} else {
			children[s.Parent] = append(children[s.Parent], i)
		}
	}
	var walk func(i int, indent string)
	walk = func(i int, indent string) {
		s := sites[i]
		var nodes []string
		for _, n := range s.Nodes {
			mark := ""
			if n.Name == s.Leader {
				mark = "*"
			}
			nodes = append(nodes, fmt.Sprintf("%s%s(%s)", n.Name, mark, n.Status))
		}
		extra := ""
		var waiting []string
		for _, o := range s.Outbox {
			if o.Depth > 0 {
				waiting = append(waiting, fmt.Sprintf("%s=%d (oldest %s)", o.ToSite, o.Depth,
					(time.Duration(o.OldestSeconds)*time.Second).String()))
			}
		}
		if len(waiting) > 0 {
			extra += " | 待发 outbox: " + strings.Join(waiting, ", ")
		}
		if s.Retired != nil && s.Retired.Retired {
			extra += " | 已停用 retired"
			if s.Retired.Reason != "" {
				extra += ": " + oneLine(s.Retired.Reason)
			}
		}
		if s.Feed != nil {
			extra += " | 镜像 feed: " + feedLag(s.Feed, now)
		}
		fmt.Fprintf(w, "%s%s [%s] %s: %s%s\n", indent, s.Site, s.Tier, s.Health, strings.Join(nodes, " "), extra)
		for _, c := range children[s.Site] {
			walk(c, indent+"  ")
		}
	}
	for _, r := range roots {
		walk(r, "")
	}
}

// feedLag says how far the answering site's mirror is behind a child: "lag 3 (2s)" (entries,
// and how long ago the last one it mirrored was committed) while the lag is known, and while it is not, "lag ?"
// with when the child was last heard and whether the feed stream is up: a child that is not
// heard from is never shown caught up.
func feedLag(f *api.FeedView, now time.Time) string {
	if f.LagKnown && f.LagEntries != nil {
		lag := fmt.Sprintf("lag %d", *f.LagEntries)
		if *f.LagEntries > 0 && f.LagSeconds != nil {
			lag += fmt.Sprintf(" (%s)", time.Duration(*f.LagSeconds*float64(time.Second)).Round(time.Second))
		}
		return lag
	}
	heard := "never heard"
	if f.HeardAt != nil {
		heard = fmt.Sprintf("heard %s ago", max(now.Sub(*f.HeardAt), 0).Round(time.Second))
	}
	if !f.StreamUp {
		heard += ", stream down"
	}
	return "lag ? (" + heard + ")"
}

// oneLine folds line breaks into spaces so that a free-text field keeps the output one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func newCaseCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "case", Short: "Submit, read, list, move and handle cases, and verify their history"}
	addr := addrFlag(cmd)
	submit := &cobra.Command{
		Use:   "submit FILE",
		Short: "Submit a case from a JSON file (- for standard input)",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			var data []byte
			var err error
			if args[0] == "-" {
				data, err = io.ReadAll(os.Stdin)
			} else {
				data, err = os.ReadFile(args[0])
			}
			if err != nil {
				return err
			}
			var body, out any
			if err := json.Unmarshal(data, &body); err != nil {
				return fmt.Errorf("%s is not JSON: %w", args[0], err)
			}
			if err := call(*addr, "POST", "/v1/cases", body, &out); err != nil {
				return err
			}
			return printJSON(out)
		},
	}
	get := &cobra.Command{
		Use:   "get NUMBER",
		Short: "Show a case with its history",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			var out any
			if err := call(*addr, "GET", "/v1/cases/"+args[0], nil, &out); err != nil {
				return err
			}
			return printJSON(out)
		},
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List this site's cases, newest first",
		Args:  cobra.NoArgs,
	}
	status := list.Flags().String("status", "", "only cases in this status")
	scope := list.Flags().String("scope", "", "local (this site's cases, the default) or subtree (its mirror of every site beneath)")
	list.RunE = func(*cobra.Command, []string) error {
		var out any
		q := url.Values{}
		if *status != "" {
			q.Set("status", *status)
		}
		if *scope != "" {
			q.Set("scope", *scope)
		}
		path := "/v1/cases"
		if len(q) > 0 {
			path += "?" + q.Encode()
		}
		if err := call(*addr, "GET", path, nil, &out); err != nil {
			return err
		}
		return printJSON(out)
	}
	cmd.AddCommand(submit, get, list)
	cmd.AddCommand(newMoveCommands(addr)...)
	cmd.AddCommand(newStepCommands(addr)...)
	cmd.AddCommand(newVerifyCaseCommand(addr))
	return cmd
}

func newLeaveCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "leave",
		Short: "Make the node on this host leave its site and the grid for good, then stop",
		Args:  cobra.NoArgs,
	}
	addr := addrFlag(cmd)
	cmd.RunE = func(*cobra.Command, []string) error {
		if err := call(*addr, "POST", "/v1/agent/leave", nil, nil); err != nil {
			return err
		}
		fmt.Println("leaving: the site leader removes this node from the site; the agent then exits")
		return nil
	}
	return cmd
}

// caCertFlag is the CA file of --ca-cert.
var caCertFlag string

// withCA is c trusting --ca-cert's CA as well as the system's, or c itself without one.
func withCA(c *http.Client) (*http.Client, error) {
	if caCertFlag == "" {
		return c, nil
	}
	pem, err := os.ReadFile(caCertFlag)
	if err != nil {
		return nil, fmt.Errorf("--ca-cert: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--ca-cert: %s holds no PEM certificate", caCertFlag)
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	cc := *c
	cc.Transport = t
	return &cc, nil
}
