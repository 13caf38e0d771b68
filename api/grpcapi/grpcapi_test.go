package grpcapi_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	pb "github.com/govgrid/govgrid/api/govgridpb"
	"github.com/govgrid/govgrid/api/grpcapi"
	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/replication"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
)

const (
	testParent = "cd-dgdj"
	testSite   = "cd-dgdj-ngj"
	testNumber = "cd-dgdj-ngj-20261125-000001"
	testCode   = "123456"
)

var testAt = time.Date(2026, 11, 25, 9, 30, 0, 123, time.FixedZone("CST", 8*3600))

// fakeCases is an api.CaseService that records its calls and answers with configurable errors.
type fakeCases struct {
	mu      sync.Mutex
	submits []*casework.Submission
	gets    []string
	lists   []replication.Filter
	moves   []moveCall

	submitErr, getErr, listErr, moveErr error
	cases                               map[string]*casework.Case
	page                                *replication.Page
}

// moveCall is one call of MoveCase.
type moveCall struct {
	number string
	d      casework.Departure
}

// MoveCase records the call and, unless moveErr is set, departs an accepted case from
// testSite to d.To (testParent if empty), the way the node would.
func (f *fakeCases) MoveCase(ctx context.Context, number string, d casework.Departure) (*casework.Case, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.moves = append(f.moves, moveCall{number: number, d: d})
	if f.moveErr != nil {
		return nil, f.moveErr
	}
	c, err := casework.Accept(grpcapi.SubmissionFromProto(validRequest()), casework.Acceptance{Number: number, Site: testSite, At: testAt})
	if err != nil {
		return nil, err
	}
	d.Site, d.At = testSite, testAt.Add(time.Hour)
	if d.To == "" {
		d.To = testParent
	}
	if _, err := c.Depart(d); err != nil {
		return nil, err
	}
	return c, nil
}

func (f *fakeCases) moveCalls() []moveCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]moveCall(nil), f.moves...)
}

func (f *fakeCases) SubmitCase(ctx context.Context, sub *casework.Submission) (*casework.Case, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.submits = append(f.submits, sub)
	if f.submitErr != nil {
		return nil, f.submitErr
	}
	c, err := casework.Accept(sub, casework.Acceptance{
		Number: testNumber, Site: testSite, At: testAt,
		QueryCodeHash: casework.HashQueryCode(sub.RequestID, testCode),
	})
	if err != nil {
		return nil, err
	}
	c.QueryCode = testCode
	return c, nil
}

func (f *fakeCases) GetCase(ctx context.Context, number string) (*casework.Case, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets = append(f.gets, number)
	if f.getErr != nil {
		return nil, f.getErr
	}
	if c, ok := f.cases[number]; ok {
		return c, nil
	}
	return nil, replication.ErrNotFound
}

func (f *fakeCases) ListCases(ctx context.Context, flt replication.Filter) (*replication.Page, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lists = append(f.lists, flt)
	if f.listErr != nil {
		return nil, f.listErr
	}
	if f.page != nil {
		return f.page, nil
	}
	return &replication.Page{}, nil
}

func (f *fakeCases) calls() (submits, gets, lists int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.submits), len(f.gets), len(f.lists)
}

// fakeCluster is a grpcapi.ClusterBackend.
type fakeCluster struct {
	registered []replication.SiteRecord

	applied  [][]byte
	applyErr error

	mu         sync.Mutex
	handoffs   []handoffCall
	outcomes   []replication.ArrivalOutcome
	handoffErr error
}

// handoffCall is one call of ReceiveHandoffs.
type handoffCall struct {
	from  string
	items []*pb.HandoffItem
}

func (c *fakeCluster) ReceiveHandoffs(ctx context.Context, from string, items []*pb.HandoffItem) ([]replication.ArrivalOutcome, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.handoffs = append(c.handoffs, handoffCall{from: from, items: items})
	if c.handoffErr != nil {
		return nil, c.handoffErr
	}
	return c.outcomes, nil
}

func (c *fakeCluster) handoffCalls() []handoffCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]handoffCall(nil), c.handoffs...)
}

func (c *fakeCluster) ApplyForwarded(ctx context.Context, cmd []byte) ([]byte, error) {
	c.applied = append(c.applied, cmd)
	if c.applyErr != nil {
		return nil, c.applyErr
	}
	return append([]byte("ok:"), cmd...), nil
}
func (c *fakeCluster) HasState() (bool, error) { return true, nil }
func (c *fakeCluster) RegisterSites(ctx context.Context, from string, recs []replication.SiteRecord) error {
	c.registered = append(c.registered, recs...)
	if from == "refused" {
		return &replication.Error{Code: replication.CodeInvalid, Message: "refused"}
	}
	return nil
}
func (c *fakeCluster) NodeName() string   { return "n1" }
func (c *fakeCluster) SiteCode() string   { return testSite }
func (c *fakeCluster) LeaderName() string { return "n2" }

type env struct {
	cases   *fakeCases
	cluster *fakeCluster
	client  pb.CasesClient
	peer    pb.ClusterClient
}

// newEnv serves Register(...) with fakes over an in-memory connection.
func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{cases: &fakeCases{cases: map[string]*casework.Case{}}, cluster: &fakeCluster{}}
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	grpcapi.Register(srv, e.cases, e.cluster)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		srv.Stop()
		<-done
	})
	e.client = pb.NewCasesClient(conn)
	e.peer = pb.NewClusterClient(conn)
	return e
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func validRequest() *pb.SubmitCaseRequest {
	return &pb.SubmitCaseRequest{
		Kind: "application", ItemCode: "QT-0010", Title: "居住证办理", Description: "满半年",
		Applicant: &pb.Applicant{Name: "张三", IdNumber: "63010219900101123X", Phone: "13800138000"},
		Materials: []*pb.Material{{Name: "身份证复印件", Digest: strings.Repeat("ab", 32), Pages: 2}},
		RequestId: "req-1", Actor: "clerk-07", DecideTier: "township",
	}
}

func wantCode(t *testing.T, err error, code codes.Code) *status.Status {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok || st.Code() != code {
		t.Fatalf("error %v, want code %v", err, code)
	}
	return st
}

func TestSubmitCase(t *testing.T) {
	e := newEnv(t)
	req := validRequest()
	got, err := e.client.SubmitCase(ctx(t), req)
	if err != nil {
		t.Fatal(err)
	}
	if got.GetNumber() != testNumber || got.GetStatus() != "submitted" || got.GetQueryCode() != testCode ||
		got.GetHolderSite() != testSite || got.GetVersion() != 1 || len(got.GetHistory()) != 1 {
		t.Errorf("answer %v", got)
	}
	if n, _, _ := e.cases.calls(); n != 1 {
		t.Fatalf("SubmitCase called %d times", n)
	}
	if want := grpcapi.SubmissionFromProto(req); !reflect.DeepEqual(e.cases.submits[0], want) {
		t.Errorf("the service got %+v, want %+v", e.cases.submits[0], want)
	}
	c := grpcapi.CaseFromProto(got)
	if err := c.VerifyHistory(); err != nil {
		t.Errorf("VerifyHistory on the answer: %v", err)
	}
	if !c.CreatedAt.Equal(testAt) {
		t.Errorf("created_at %v, want %v", c.CreatedAt, testAt)
	}
}

func TestSubmitCaseInvalid(t *testing.T) {
	tests := []struct {
		name   string
		change func(r *pb.SubmitCaseRequest)
		fields []string
	}{
		{"no applicant", func(r *pb.SubmitCaseRequest) { r.Applicant = nil }, []string{"applicant"}},
		{"bad kind", func(r *pb.SubmitCaseRequest) { r.Kind = "x" }, []string{"kind"}},
		{"bad id number", func(r *pb.SubmitCaseRequest) { r.Applicant.IdNumber = "123" }, []string{"applicant.id_number"}},
		{"negative pages", func(r *pb.SubmitCaseRequest) { r.Materials[0].Pages = -1 }, []string{"materials[0].pages"}},
		{"several", func(r *pb.SubmitCaseRequest) { r.Title = ""; r.Applicant.Phone = "x"; r.DecideTier = "nation" },
			[]string{"title", "applicant.phone", "decide_tier"}},
		{"empty", func(r *pb.SubmitCaseRequest) { *r = pb.SubmitCaseRequest{} }, []string{"kind", "title", "applicant"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			req := validRequest()
			tt.change(req)
			_, err := e.client.SubmitCase(ctx(t), req)
			st := wantCode(t, err, codes.InvalidArgument)
			for _, f := range tt.fields {
				if !strings.Contains(st.Message(), f+": ") {
					t.Errorf("message %q does not name %s", st.Message(), f)
				}
			}
			if n, _, _ := e.cases.calls(); n != 0 {
				t.Errorf("the service was called for an invalid request")
			}
		})
	}
}

func TestSubmitCaseServiceErrors(t *testing.T) {
	for _, tt := range []struct {
		err  error
		code codes.Code
	}{
		{replication.ErrNoLeader, codes.Unavailable},
		{fmt.Errorf("forward: %w", replication.ErrNotLeader), codes.Unavailable},
		{&replication.Error{Code: replication.CodeConflict, Message: "conflict"}, codes.FailedPrecondition},
		{&replication.Error{Code: replication.CodeExhausted, Message: "no numbers left"}, codes.ResourceExhausted},
		{&replication.Error{Code: replication.CodeInvalid, Message: "unknown item"}, codes.InvalidArgument},
		{context.DeadlineExceeded, codes.DeadlineExceeded},
		{errors.New("boom"), codes.Internal},
		{status.Error(codes.Aborted, "already a status"), codes.Aborted},
	} {
		t.Run(tt.err.Error(), func(t *testing.T) {
			e := newEnv(t)
			e.cases.submitErr = tt.err
			_, err := e.client.SubmitCase(ctx(t), validRequest())
			wantCode(t, err, tt.code)
		})
	}
}

func TestGetCase(t *testing.T) {
	e := newEnv(t)
	stored := fullCase()
	e.cases.cases[stored.Number] = stored
	got, err := e.client.GetCase(ctx(t), &pb.GetCaseRequest{Number: stored.Number})
	if err != nil {
		t.Fatal(err)
	}
	c := grpcapi.CaseFromProto(got)
	if c.Number != stored.Number || c.QueryCodeHash != "" || c.RequestID != "" {
		t.Errorf("got %+v", c)
	}
	if c.LastHash() != stored.LastHash() {
		t.Errorf("history hash changed on the wire")
	}
}

func TestGetCaseErrors(t *testing.T) {
	tests := []struct {
		name   string
		number string
		err    error
		code   codes.Code
		called bool
	}{
		{"malformed", "abc", nil, codes.InvalidArgument, false},
		{"empty", "", nil, codes.InvalidArgument, false},
		{"bad date", "cd-20261332-000001", nil, codes.InvalidArgument, false},
		{"not found", testNumber, nil, codes.NotFound, true},
		{"refused not found", testNumber, &replication.Error{Code: replication.CodeNotFound, Message: "no case"}, codes.NotFound, true},
		{"no leader", testNumber, replication.ErrNoLeader, codes.Unavailable, true},
		{"closed", testNumber, replication.ErrClosed, codes.Unavailable, true},
		{"canceled", testNumber, context.Canceled, codes.Canceled, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.cases.getErr = tt.err
			_, err := e.client.GetCase(ctx(t), &pb.GetCaseRequest{Number: tt.number})
			st := wantCode(t, err, tt.code)
			if tt.code == codes.InvalidArgument && !strings.HasPrefix(st.Message(), "number: ") {
				t.Errorf("message %q", st.Message())
			}
			if _, n, _ := e.cases.calls(); (n == 1) != tt.called {
				t.Errorf("GetCase called %d times, want called=%v", n, tt.called)
			}
		})
	}
}

func TestListCases(t *testing.T) {
	e := newEnv(t)
	a, b := fullCase(), fullCase()
	b.Number = "cd-20261125-000002"
	e.cases.page = &replication.Page{Cases: []*casework.Case{a, b}, NextPageToken: "tok2"}
	from := time.Date(2026, 11, 24, 16, 0, 0, 0, time.UTC)
	to := from.Add(24 * time.Hour)
	res, err := e.client.ListCases(ctx(t), &pb.ListCasesRequest{
		Status: "submitted", Kind: "grievance", ItemCode: "QT-1", From: from.UnixNano(), To: to.UnixNano(),
		PageSize: 7, PageToken: "tok1",
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.GetCases()) != 2 || res.GetNextPageToken() != "tok2" || res.GetCases()[1].GetNumber() != b.Number {
		t.Errorf("answer %v", res)
	}
	f := e.cases.lists[0]
	if f.Status != "submitted" || f.Kind != casework.KindGrievance || f.ItemCode != "QT-1" || f.Limit != 7 ||
		f.PageToken != "tok1" || !f.From.Equal(from) || !f.To.Equal(to) {
		t.Errorf("filter %+v", f)
	}

	// Zero from/to mean no bound.
	if _, err := e.client.ListCases(ctx(t), &pb.ListCasesRequest{}); err != nil {
		t.Fatal(err)
	}
	if f := e.cases.lists[1]; !f.From.IsZero() || !f.To.IsZero() || f.Limit != 0 {
		t.Errorf("empty request gave filter %+v", f)
	}

	e.cases.listErr = &replication.Error{Code: replication.CodeInvalid, Message: "page_token is not valid"}
	_, err = e.client.ListCases(ctx(t), &pb.ListCasesRequest{PageToken: "x"})
	wantCode(t, err, codes.InvalidArgument)
}

func TestCluster(t *testing.T) {
	e := newEnv(t)
	res, err := e.peer.Apply(ctx(t), &pb.ApplyRequest{Command: []byte("cmd")})
	if err != nil {
		t.Fatal(err)
	}
	if string(res.GetResult()) != "ok:cmd" || len(e.cluster.applied) != 1 {
		t.Errorf("Apply = %q", res.GetResult())
	}
	e.cluster.applyErr = replication.ErrNotLeader
	_, err = e.peer.Apply(ctx(t), &pb.ApplyRequest{Command: []byte("cmd")})
	wantCode(t, err, codes.Unavailable)

	st, err := e.peer.RaftStatus(ctx(t), &pb.RaftStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if st.GetNode() != "n1" || st.GetSite() != testSite || !st.GetHasState() || st.GetLeader() != "n2" {
		t.Errorf("RaftStatus = %v", st)
	}
}

func TestErr(t *testing.T) {
	if grpcapi.Err(nil) != nil {
		t.Errorf("Err(nil) != nil")
	}
	st := status.Error(codes.PermissionDenied, "no")
	if grpcapi.Err(st) != st {
		t.Errorf("Err changed a status error")
	}
	fe := casework.FieldErrors{{Field: "title", Reason: "is required"}}
	if got := status.Code(grpcapi.Err(fmt.Errorf("wrapped: %w", fe))); got != codes.InvalidArgument {
		t.Errorf("field errors → %v", got)
	}
}

func TestRegisterSitesPassesRecordsAndRefusals(t *testing.T) {
	e := newEnv(t)
	cl := e.peer
	_, err := cl.RegisterSites(context.Background(), &pb.RegisterSitesRequest{FromSite: "cd-dgdj", Sites: []*pb.SiteRecord{
		{Code: "cd-dgdj", Tier: "township", Parent: "cd", Nodes: []string{"a", "b"}, Leader: "a"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := replication.SiteRecord{Code: "cd-dgdj", Tier: "township", Parent: "cd", Nodes: []string{"a", "b"}, Leader: "a"}
	if len(e.cluster.registered) != 1 || !reflect.DeepEqual(e.cluster.registered[0], want) {
		t.Fatalf("registered %+v", e.cluster.registered)
	}
	_, err = cl.RegisterSites(context.Background(), &pb.RegisterSitesRequest{FromSite: "refused"})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("refusal = %v, want InvalidArgument", err)
	}
}

func TestListCasesMasksIdentityNumbersAndRefusesBadFilters(t *testing.T) {
	e := newEnv(t)
	c, err := casework.Accept(grpcapi.SubmissionFromProto(validRequest()), casework.Acceptance{Number: "cd-20261125-000001", Site: "cd", At: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	e.cases.page = &replication.Page{Cases: []*casework.Case{c}}
	resp, err := e.client.ListCases(context.Background(), &pb.ListCasesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetCases()) == 0 {
		t.Fatal("the listing is empty")
	}
	for _, c := range resp.GetCases() {
		if id := c.GetApplicant().GetIdNumber(); !strings.Contains(id, "*") || len(c.GetHistory()) != 0 {
			t.Fatalf("listing shows id %q and %d events", id, len(c.GetHistory()))
		}
	}
	for _, req := range []*pb.ListCasesRequest{{Kind: "petition"}, {PageSize: -1}, {PageSize: 100000}} {
		if _, err := e.client.ListCases(context.Background(), req); status.Code(err) != codes.InvalidArgument {
			t.Errorf("%v: err = %v, want InvalidArgument", req, err)
		}
	}
}

// ServeFeed answers the first acknowledgement with one batch naming the cursor it was given.
func (c *fakeCluster) ServeFeed(stream pb.Cluster_FeedServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	if first.GetFromSite() == "" {
		return status.Error(codes.PermissionDenied, "no site")
	}
	return stream.Send(&pb.FeedBatch{Head: first.GetCursor() + 1, Entries: [][]byte{[]byte(`{"seq":1}`)}})
}

func TestFeedStreamReachesTheBackend(t *testing.T) {
	e := newEnv(t)
	stream, err := e.peer.Feed(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&pb.FeedAck{FromSite: "cd", Cursor: 41}); err != nil {
		t.Fatal(err)
	}
	b, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if b.GetHead() != 42 || len(b.GetEntries()) != 1 {
		t.Fatalf("batch %+v", b)
	}
}

func (f *fakeCases) ListSubtree(ctx context.Context, flt replication.MirrorFilter) (*replication.MirrorPage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := &replication.MirrorPage{}
	for _, c := range f.cases {
		if flt.Site == "" || c.HolderSite == flt.Site {
			out.Records = append(out.Records, &replication.MirrorRecord{Case: c, Origin: c.HolderSite})
		}
	}
	return out, nil
}

func TestListSubtreeOverGRPC(t *testing.T) {
	e := newEnv(t)
	c, err := casework.Accept(grpcapi.SubmissionFromProto(validRequest()), casework.Acceptance{Number: testNumber, Site: testSite, At: testAt})
	if err != nil {
		t.Fatal(err)
	}
	e.cases.cases[c.Number] = c
	resp, err := e.client.ListCases(ctx(t), &pb.ListCasesRequest{Scope: "subtree", Site: testSite, Tier: "community"})
	if err != nil || len(resp.GetCases()) != 1 || resp.GetCases()[0].GetHistory() != nil {
		t.Fatalf("subtree listing: %v %v", resp, err)
	}
	for _, bad := range []*pb.ListCasesRequest{{Scope: "all"}, {Tier: "community"}, {Scope: "subtree", Tier: "province"}, {Scope: "subtree", Site: "Bad_Site"}} {
		if _, err := e.client.ListCases(ctx(t), bad); status.Code(err) != codes.InvalidArgument {
			t.Errorf("ListCases(%v): %v, want InvalidArgument", bad, err)
		}
	}
}

func (c *fakeCluster) ConfigSince(ctx context.Context, from string, known map[string]uint64) ([][]byte, error) {
	if from == "stranger" {
		return nil, status.Error(codes.PermissionDenied, "not a child")
	}
	return [][]byte{[]byte(fmt.Sprintf(`{"owner":"cd","path":"p","version":%d}`, known["cd"]+1))}, nil
}

func TestConfigSinceOverGRPC(t *testing.T) {
	e := newEnv(t)
	resp, err := e.peer.ConfigSince(ctx(t), &pb.ConfigSinceRequest{FromSite: "cd-dgdj", Known: map[string]uint64{"cd": 4}})
	if err != nil || len(resp.GetDocs()) != 1 || !strings.Contains(string(resp.GetDocs()[0]), `"version":5`) {
		t.Fatalf("ConfigSince: %v %v", resp, err)
	}
	if _, err := e.peer.ConfigSince(ctx(t), &pb.ConfigSinceRequest{}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("without from_site: %v", err)
	}
	if _, err := e.peer.ConfigSince(ctx(t), &pb.ConfigSinceRequest{FromSite: "stranger"}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("from a stranger: %v", err)
	}
}

func (c *fakeCluster) ServeExport(site string, stream pb.Cluster_ExportSiteServer) error {
	return stream.Send(&pb.ExportChunk{Total: 1, FeedCursor: 7, Records: [][]byte{[]byte(`{"case":{"number":"` + site + `-20261125-000001"}}`)}})
}

func TestExportSiteOverGRPC(t *testing.T) {
	e := newEnv(t)
	stream, err := e.peer.ExportSite(ctx(t), &pb.ExportSiteRequest{Site: "cd-dgdj-ngj"})
	if err != nil {
		t.Fatal(err)
	}
	chunk, err := stream.Recv()
	if err != nil || chunk.GetTotal() != 1 || chunk.GetFeedCursor() != 7 || !strings.Contains(string(chunk.GetRecords()[0]), "cd-dgdj-ngj-") {
		t.Fatalf("export: %v %v", chunk, err)
	}
	bad, err := e.peer.ExportSite(ctx(t), &pb.ExportSiteRequest{})
	if err == nil {
		_, err = bad.Recv()
	}
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("export without a site: %v", err)
	}
}
