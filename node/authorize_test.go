package node_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/govgrid/govgrid/api"
	pb "github.com/govgrid/govgrid/api/govgridpb"
	"github.com/govgrid/govgrid/api/grpcapi"
	"github.com/govgrid/govgrid/auth"
	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/node"
	"github.com/govgrid/govgrid/testgrid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// matrixPlace is where a member of staff acts in the role matrix: their account's site, the site
// that signed their token in, and the node they call.
type matrixPlace struct {
	name          string
	account, sign string // sites
	at            string // site of the node called
	// outside: the node called is outside the account's subtree (403 whatever the roles);
	// unverifiable: the node called cannot even verify the token (401).
	outside, unverifiable bool
}

var matrixPlaces = []matrixPlace{
	{name: "community at its own site", account: "cd-dgdj-ngj", sign: "cd-dgdj-ngj", at: "cd-dgdj-ngj"},
	{name: "community at a sibling", account: "cd-dgdj-ngj", sign: "cd-dgdj", at: "cd-dgdj-bgj", outside: true},
	{name: "community at its township", account: "cd-dgdj-ngj", sign: "cd-dgdj", at: "cd-dgdj", outside: true},
	{name: "township at its own site", account: "cd-dgdj", sign: "cd-dgdj", at: "cd-dgdj"},
	{name: "township in its subtree", account: "cd-dgdj", sign: "cd-dgdj", at: "cd-dgdj-ngj"},
	{name: "township at the district", account: "cd-dgdj", sign: "cd-dgdj", at: "cd", outside: true, unverifiable: true},
	{name: "district at its own site", account: "cd", sign: "cd", at: "cd"},
	{name: "district in its subtree", account: "cd", sign: "cd", at: "cd-dgdj-bgj"},
}

// matrixVerb is one call of the role matrix: what it asks of the node at site, and the status it
// answers when allowed.
type matrixVerb struct {
	name   string
	action auth.Action
	// call makes the request with token at node n of site, using a case fixture held there.
	call func(t *testing.T, f *matrixFixture, n *node.Node, token string) int
	// ok is the answer when allowed at a site of this tier (a move with no target there is
	// refused as bad input, after the caller was authorized).
	ok func(site string) int
}

// matrixFixture makes the cases the verbs act on.
type matrixFixture struct {
	g     *testgrid.Grid
	seq   int
	fixed map[string]*casework.Case // one case held at each site, never moved: for reads and refusals
}

func (f *matrixFixture) fresh(t *testing.T, n *node.Node) *casework.Case {
	f.seq++
	return submitDecided(t, n, 1000+f.seq, "")
}

var matrixVerbs = []matrixVerb{
	{"POST /v1/cases", auth.ActSubmit, func(t *testing.T, f *matrixFixture, n *node.Node, tok string) int {
		code, _ := authCall(t, n, "POST", "/v1/cases", tok, testgrid.Submission(2000+f.seq), nil)
		return code
	}, always(http.StatusCreated)},
	{"GET /v1/cases/{number}", auth.ActReadCase, func(t *testing.T, f *matrixFixture, n *node.Node, tok string) int {
		code, _ := authCall(t, n, "GET", "/v1/cases/"+f.fixed[n.Site()].Number, tok, nil, nil)
		return code
	}, always(http.StatusOK)},
	{"GET /v1/cases", auth.ActListCases, func(t *testing.T, f *matrixFixture, n *node.Node, tok string) int {
		code, _ := authCall(t, n, "GET", "/v1/cases", tok, nil, nil)
		return code
	}, always(http.StatusOK)},
	{"GET /v1/cases?scope=subtree", auth.ActListCases, func(t *testing.T, f *matrixFixture, n *node.Node, tok string) int {
		code, _ := authCall(t, n, "GET", "/v1/cases?scope=subtree", tok, nil, nil)
		return code
	}, always(http.StatusOK)},
	{"POST .../escalate", auth.ActEscalate, moveCall("escalate", ""), func(site string) int {
		if site == "cd" {
			return http.StatusBadRequest // the district has no parent
		}
		return http.StatusAccepted
	}},
	{"POST .../handdown", auth.ActHandDown, moveCall("handdown", "child"), func(site string) int {
		if isCommunity(site) {
			return http.StatusBadRequest // a community has no child
		}
		return http.StatusAccepted
	}},
	// A return or relay of a case taken in here has nowhere to go: allowed callers hear why (a
	// return, that the case came from nowhere: a conflict with its state).
	{"POST .../return", auth.ActReturn, moveCall("return", ""), always(http.StatusConflict)},
	{"POST .../relay", auth.ActRelay, moveCall("relay", "sibling"), always(http.StatusBadRequest)},
	// The steps of a case's life, on a case just submitted: intake is taken, the later steps are
	// refused for the case's status (409) once the caller is authorized.
	{"POST .../accept", auth.ActAccept, stepCall("accept", nil), always(http.StatusOK)},
	{"POST .../reject", auth.ActAccept, stepCall("reject", api.StepRequest{Reason: "不属于受理范围", LegalBasis: "《行政许可法》第三十二条"}), always(http.StatusOK)},
	{"POST .../request-supplement", auth.ActAccept, stepCall("request-supplement", api.StepRequest{Missing: []string{"户口簿"}}), always(http.StatusOK)},
	{"POST .../supplement", auth.ActAccept, stepCall("supplement", api.StepRequest{Materials: []casework.Material{{Name: "户口簿"}}}), always(http.StatusConflict)},
	{"POST .../process", auth.ActProcess, stepCall("process", nil), always(http.StatusConflict)},
	{"POST .../sign-off", auth.ActProcess, stepCall("sign-off", api.StepRequest{Department: "rs"}), always(http.StatusConflict)},
	{"POST .../complete", auth.ActProcess, stepCall("complete", nil), always(http.StatusConflict)},
	{"POST .../review", auth.ActReview, stepCall("review", nil), always(http.StatusConflict)},
	{"POST .../approve", auth.ActApprove, stepCall("approve", nil), always(http.StatusConflict)},
	{"POST .../deny", auth.ActApprove, stepCall("deny", api.StepRequest{Reason: "不符合条件"}), always(http.StatusConflict)},
	{"POST .../charge", auth.ActCharge, stepCall("charge", api.StepRequest{AmountFen: 1000}), always(http.StatusConflict)},
	{"POST .../exempt", auth.ActCharge, stepCall("exempt", api.StepRequest{Reason: "低保对象"}), always(http.StatusConflict)},
	{"POST .../pay", auth.ActPay, stepCall("pay", api.StepRequest{AmountFen: 1000, PaymentRef: "p-1"}), always(http.StatusConflict)},
	{"POST .../issue-certificate", auth.ActIssue, stepCall("issue-certificate", nil), always(http.StatusConflict)},
	{"POST .../deliver", auth.ActIssue, stepCall("deliver", nil), always(http.StatusConflict)},
	{"POST .../withdraw", auth.ActWithdraw, stepCall("withdraw", nil), always(http.StatusOK)},
	{"GET /v1/config", auth.ActReadConfig, func(t *testing.T, f *matrixFixture, n *node.Node, tok string) int {
		code, _ := authCall(t, n, "GET", "/v1/config", tok, nil, nil)
		return code
	}, always(http.StatusOK)},
	{"PUT /v1/config/{path}", auth.ActAdminister, func(t *testing.T, f *matrixFixture, n *node.Node, tok string) int {
		code, _ := authCall(t, n, "PUT", "/v1/config/notices/matrix", tok, "工作日 9:00-17:00", nil)
		return code
	}, func(site string) int {
		if isCommunity(site) {
			return http.StatusConflict // a community owns no documents
		}
		return http.StatusOK
	}},
	{"POST /v1/site/reinstate", auth.ActAdminister, func(t *testing.T, f *matrixFixture, n *node.Node, tok string) int {
		code, _ := authCall(t, n, "POST", "/v1/site/reinstate", tok, nil, nil)
		return code
	}, always(http.StatusOK)},
	{"POST /v1/agent/leave (refusals only)", auth.ActAdminister, func(t *testing.T, f *matrixFixture, n *node.Node, tok string) int {
		// An allowed leave would end the node: only refusals are asked here (the CLI's leave
		// is tested end to end).
		code, _ := authCall(t, n, "POST", "/v1/agent/leave", tok, nil, nil)
		return code
	}, nil},
	{"GET /v1/audit", auth.ActReadAudit, func(t *testing.T, f *matrixFixture, n *node.Node, tok string) int {
		code, _ := authCall(t, n, "GET", "/v1/audit", tok, nil, nil)
		return code
	}, always(http.StatusOK)},
}

// isCommunity says whether a site of fourSites is a community.
func isCommunity(site string) bool { return strings.Count(site, "-") == 2 }

func always(code int) func(string) int { return func(string) int { return code } }

// stepCall takes a step of a fresh case held at the node's site (the fixture case when there is
// no token), with body.
func stepCall(step string, body any) func(t *testing.T, f *matrixFixture, n *node.Node, tok string) int {
	return func(t *testing.T, f *matrixFixture, n *node.Node, tok string) int {
		c := f.fixed[n.Site()]
		if tok != "" {
			c = f.fresh(t, n)
		}
		code, _ := authCall(t, n, "POST", "/v1/cases/"+c.Number+"/"+step, tok, body, nil)
		return code
	}
}

// moveCall moves a fresh case held at the node's site (the fixture case when there is no token). to is "child" for the first site beneath, "sibling" for another community.
func moveCall(verb, to string) func(t *testing.T, f *matrixFixture, n *node.Node, tok string) int {
	return func(t *testing.T, f *matrixFixture, n *node.Node, tok string) int {
		c := f.fixed[n.Site()]
		if tok != "" {
			c = f.fresh(t, n) // an allowed move moves it
		}
		req := api.MoveRequest{Reason: "核实"}
		switch to {
		case "child":
			req.ToSite = map[string]string{"cd": "cd-dgdj", "cd-dgdj": "cd-dgdj-ngj"}[n.Site()]
			if req.ToSite == "" {
				req.ToSite = "cd-dgdj-bgj" // from a community: not a child
			}
		case "sibling":
			req.ToSite = "cd-dgdj-bgj"
		}
		code, _ := authCall(t, n, "POST", "/v1/cases/"+c.Number+"/"+verb, tok, req, nil)
		return code
	}
}

// TestRoleMatrix: every verb × every role × own site, subtree and outside, through the HTTP API
// of a real grid; allowed exactly when auth.Policy gives the role the action and the node called
// is in the account's subtree; 401 without a token or where the token cannot be verified.
func TestRoleMatrix(t *testing.T) {
	g := testgrid.New(t, fourSites)
	nodes := map[string]*node.Node{}
	for _, s := range []string{"cd", "cd-dgdj", "cd-dgdj-ngj", "cd-dgdj-bgj"} {
		nodes[s] = g.WaitLeader(s)
	}
	waitRegistered(t, g, nodes["cd"], map[string]string{"cd-dgdj": "cd", "cd-dgdj-ngj": "cd-dgdj", "cd-dgdj-bgj": "cd-dgdj"}, 20*time.Second)
	f := &matrixFixture{g: g, fixed: map[string]*casework.Case{}}
	for s, n := range nodes {
		f.fixed[s] = f.fresh(t, n)
	}
	// The accounts: one per role at each account site, kept where such accounts are kept (a
	// community's by its township), signed in where the place says.
	keeper := map[string]string{"cd": "cd", "cd-dgdj": "cd-dgdj", "cd-dgdj-ngj": "cd-dgdj"}
	tokens, users := map[string]string{}, map[string]string{}
	for _, p := range matrixPlaces {
		for _, r := range auth.Roles {
			key := p.account + "/" + p.sign + "/" + string(r)
			if _, ok := tokens[key]; !ok {
				user := fmt.Sprintf("m%d.%s", len(tokens)/len(auth.Roles), r)
				users[key] = user
				tokens[key] = testgrid.SignIn(t, nodes[keeper[p.account]], p.account, nodes[p.sign], user, r)
			}
		}
	}
	// Every token is verifiable where the place says it is, once the signing site's key and the
	// account (each role's its own document) have reached it through the configuration feed.
	for _, p := range matrixPlaces {
		if p.unverifiable {
			continue
		}
		for _, r := range auth.Roles {
			tok := tokens[p.account+"/"+p.sign+"/"+string(r)]
			g.Eventually(30*time.Second, func() error {
				if code, body := authCall(t, nodes[p.at], "GET", "/v1/auth/whoami", tok, nil, nil); code != http.StatusOK {
					return fmt.Errorf("%s, %s: whoami %d %s", p.name, r, code, body)
				}
				return nil
			})
		}
	}

	for _, v := range matrixVerbs {
		t.Run(v.name, func(t *testing.T) {
			for _, s := range []string{"cd", "cd-dgdj-ngj"} {
				if code := v.call(t, f, nodes[s], ""); code != http.StatusUnauthorized {
					t.Errorf("no token at %s: %d, want 401", s, code)
				}
			}
			for _, p := range matrixPlaces {
				for _, r := range auth.Roles {
					allowed := auth.Permits([]auth.Role{r}, v.action)
					want := 0
					switch {
					case p.unverifiable:
						want = http.StatusUnauthorized
					case p.outside || !allowed:
						want = http.StatusForbidden
					case v.ok == nil:
						continue // allowed, and not asked (leave)
					default:
						want = v.ok(p.at)
					}
					tok := tokens[p.account+"/"+p.sign+"/"+string(r)]
					if got := v.call(t, f, nodes[p.at], tok); got != want {
						t.Errorf("%-12s %s: %d, want %d", r, p.name, got, want)
					}
				}
			}
		})
	}

	// Supervision reads a case with the applicant's ID number and phone masked; a clerk in full.
	var read casework.Case
	number := f.fixed["cd-dgdj-ngj"].Number
	if code, body := authCall(t, nodes["cd"], "GET", "/v1/cases/"+number, tokens["cd/cd/supervisor"], nil, &read); code != http.StatusOK ||
		read.Applicant.IDNumber == testgrid.Submission(0).Applicant.IDNumber || strings.Contains(body, testgrid.Submission(0).Applicant.Phone) {
		t.Errorf("the district's supervisor reads %s: %d, applicant %+v", number, code, read.Applicant)
	}
	if code, _ := authCall(t, nodes["cd-dgdj-ngj"], "GET", "/v1/cases/"+number, tokens["cd-dgdj-ngj/cd-dgdj-ngj/clerk"], nil, &read); code != http.StatusOK ||
		read.Applicant.IDNumber != testgrid.Submission(0).Applicant.IDNumber {
		t.Errorf("the community's clerk reads %s: %d, applicant %+v", number, code, read.Applicant)
	}
	// Supervision reads any site's audit trail of its subtree where it works: the district's at the
	// district, asking the community for its trail; a township's not the district's.
	g.Eventually(20*time.Second, func() error {
		var page struct {
			Entries []struct{ Kind, Subject string }
			ChainOK bool `json:"chain_ok"`
		}
		code, body := authCall(t, nodes["cd"], "GET", "/v1/audit?site=cd-dgdj-ngj&limit=1000", tokens["cd/cd/supervisor"], nil, &page)
		if code != http.StatusOK || !page.ChainOK {
			return fmt.Errorf("the community's trail at the district: %d %s", code, body)
		}
		for _, e := range page.Entries {
			if e.Kind == "record_read" && e.Subject == f.fixed["cd-dgdj-ngj"].Number {
				return nil
			}
		}
		return fmt.Errorf("the community's trail at the district has no read of %s yet (%d entries)", f.fixed["cd-dgdj-ngj"].Number, len(page.Entries))
	})
	if code, _ := authCall(t, nodes["cd-dgdj"], "GET", "/v1/audit?site=cd", tokens["cd-dgdj/cd-dgdj/supervisor"], nil, nil); code != http.StatusForbidden {
		t.Errorf("a township's supervisor reads the district's trail: %d, want 403", code)
	}
	if code, _ := authCall(t, nodes["cd"], "GET", "/v1/audit?site=cd-dgdj-bgj", tokens["cd/cd/clerk"], nil, nil); code != http.StatusForbidden {
		t.Errorf("a clerk reads a trail: %d, want 403", code)
	}

	// The district's staff read any case at any node: one held at a sibling village and one held
	// at the township, through a village (the village's registry knows neither: gossip's tree
	// fills in), while the sibling village's own staff may not.
	held := f.fresh(t, nodes["cd-dgdj"])
	for _, number := range []string{f.fixed["cd-dgdj-ngj"].Number, held.Number} {
		if code, body := authCall(t, nodes["cd-dgdj-bgj"], "GET", "/v1/cases/"+number, tokens["cd/cd/clerk"], nil, nil); code != http.StatusOK {
			t.Errorf("the district's clerk reads %s at a village: %d %s", number, code, body)
		}
	}
	if code, _ := authCall(t, nodes["cd-dgdj-bgj"], "GET", "/v1/cases/"+held.Number, testgrid.StaffToken(t, nodes["cd-dgdj-bgj"]), nil, nil); code != http.StatusForbidden {
		t.Errorf("a village's staff read the township's case: %d, want 403", code)
	}

	// The actor of a submission is the signed-in account, whatever the request says.
	sub := testgrid.Submission(3000)
	sub.Actor = "冒名者"
	var made casework.Case
	if code, body := authCall(t, nodes["cd-dgdj-ngj"], "POST", "/v1/cases", tokens["cd-dgdj-ngj/cd-dgdj-ngj/clerk"], sub, &made); code != http.StatusCreated {
		t.Fatalf("submit: %d %s", code, body)
	}
	if got := made.History[0].Actor; got != "测试员 ("+users["cd-dgdj-ngj/cd-dgdj-ngj/clerk"]+")" {
		t.Errorf("the submission's actor is %q", got)
	}
}

// TestRoleMatrixOverGRPC: the Cases service asks the same of its callers as HTTP does: a token in
// the call's metadata (Unauthenticated without), the roles and the subtree (PermissionDenied).
func TestRoleMatrixOverGRPC(t *testing.T) {
	g := testgrid.New(t, fourSites)
	ngj, bgj, township := g.WaitLeader("cd-dgdj-ngj"), g.WaitLeader("cd-dgdj-bgj"), g.WaitLeader("cd-dgdj")
	waitRegistered(t, g, township, map[string]string{"cd-dgdj-ngj": "cd-dgdj", "cd-dgdj-bgj": "cd-dgdj"}, 20*time.Second)
	clerk := testgrid.SignIn(t, township, "cd-dgdj-ngj", township, "g.clerk", auth.RoleClerk)
	admin := testgrid.SignIn(t, township, "cd-dgdj-ngj", ngj, "g.admin", auth.RoleAdmin)
	fixed := submitDecided(t, bgj, 1, "")
	dial := func(n *node.Node) pb.CasesClient {
		conn, err := grpc.NewClient(n.Addrs().GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return pb.NewCasesClient(conn)
	}
	as := func(tok string) context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		t.Cleanup(cancel)
		if tok == "" {
			return ctx
		}
		return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
	}
	// The clerk's token, signed at the township, is verified at both communities.
	g.Eventually(20*time.Second, func() error {
		for _, n := range []*node.Node{ngj, bgj} {
			if code, _ := authCall(t, n, "GET", "/v1/auth/whoami", clerk, nil, nil); code != http.StatusOK {
				return fmt.Errorf("whoami at %s: %d", n.Name(), code)
			}
		}
		return nil
	})
	sub := grpcSubmission()
	for _, c := range []struct {
		name string
		call func() error
		want codes.Code
	}{
		{"submit without a token", func() error { _, err := dial(ngj).SubmitCase(as(""), sub); return err }, codes.Unauthenticated},
		{"submit with a forged token", func() error { _, err := dial(ngj).SubmitCase(as("v1.e30.AAAA"), sub); return err }, codes.Unauthenticated},
		{"the clerk submits at its community", func() error { _, err := dial(ngj).SubmitCase(as(clerk), sub); return err }, codes.OK},
		{"the clerk submits at a sibling", func() error { _, err := dial(bgj).SubmitCase(as(clerk), sub); return err }, codes.PermissionDenied},
		{"the clerk reads a sibling's case", func() error {
			_, err := dial(bgj).GetCase(as(clerk), &pb.GetCaseRequest{Number: fixed.Number})
			return err
		}, codes.PermissionDenied},
		{"the clerk lists at its community", func() error { _, err := dial(ngj).ListCases(as(clerk), &pb.ListCasesRequest{}); return err }, codes.OK},
		{"the admin submits", func() error { _, err := dial(ngj).SubmitCase(as(admin), sub); return err }, codes.PermissionDenied},
		{"the admin lists", func() error { _, err := dial(ngj).ListCases(as(admin), &pb.ListCasesRequest{}); return err }, codes.PermissionDenied},
		{"the clerk hands down", func() error {
			c := submitDecided(t, ngj, 2, "")
			_, err := dial(ngj).MoveCase(as(clerk), &pb.MoveCaseRequest{Number: c.Number, Move: "handdown", ToSite: "cd-dgdj-bgj"})
			return err
		}, codes.PermissionDenied},
	} {
		if got := status.Code(c.call()); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func grpcSubmission() *pb.SubmitCaseRequest { return grpcapi.SubmissionToProto(testgrid.Submission(7)) }

// TestOperatorKeyAdministersFromTheNodesHost: once accounts exist, the node's own host needs a
// credential too; the operator key in the data directory is one, for the node's administration
// only (a backup here), never for cases, and a wrong key is refused.
func TestOperatorKeyAdministersFromTheNodesHost(t *testing.T) {
	g := testgrid.New(t, testgrid.Spec{Sites: fourSites.Sites[:1]})
	n := g.WaitLeader("cd")
	testgrid.StaffToken(t, n) // an account is in force: loopback alone no longer administers
	call := func(method, path, authz string) int {
		req, _ := http.NewRequest(method, "http://"+n.Addrs().HTTP+path, nil)
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	key, err := os.ReadFile(n.DataPath(node.OperatorKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(n.DataPath(node.OperatorKeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("operator key file: %v %v", fi.Mode(), err)
	}
	op := "Operator " + strings.TrimSpace(string(key))
	for _, c := range []struct {
		name, method, path, authz string
		want                      int
	}{
		{"a backup without a credential", "GET", "/v1/snapshot", "", http.StatusUnauthorized},
		{"a backup with the operator key", "GET", "/v1/snapshot", op, http.StatusOK},
		{"a backup with a wrong key", "GET", "/v1/snapshot", "Operator " + strings.Repeat("0", 64), http.StatusUnauthorized},
		{"cases with the operator key", "GET", "/v1/cases", op, http.StatusUnauthorized},
	} {
		if got := call(c.method, c.path, c.authz); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}
