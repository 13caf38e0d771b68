package node

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	pb "github.com/govgrid/govgrid/api/govgridpb"
	"github.com/govgrid/govgrid/replication"
	"github.com/govgrid/govgrid/sitestate"
	"github.com/govgrid/govgrid/tier"
	"google.golang.org/grpc/codes"
)

// fakeRegistry is a registryState: it records what it is asked to commit and answers err; known
// is the registry it already holds.
type fakeRegistry struct {
	mu    sync.Mutex
	calls [][]sitestate.SiteRecord
	err   error
	known []sitestate.SiteRecord
}

func (f *fakeRegistry) Sites() ([]sitestate.SiteRecord, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.known), nil
}

func (f *fakeRegistry) RegisterSites(ctx context.Context, sites []sitestate.SiteRecord) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, sites)
	return f.err
}

func (f *fakeRegistry) registered() [][]sitestate.SiteRecord {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// serveRegistry serves the registry endpoint of a site of tier t.
func serveRegistry(t *testing.T, site string, tr tier.Tier, state *fakeRegistry) pb.ClusterClient {
	parent := map[tier.Tier]string{tier.Township: epParent, tier.Community: epSite}[tr]
	return serveCluster(t, &clusterServer{registryEndpoint: &registryEndpoint{site: site, parent: parent, tier: tr, state: state}})
}

func TestRegisterSitesCommitsTheSubtree(t *testing.T) {
	for _, tt := range []struct {
		name  string
		site  string
		tier  tier.Tier
		req   *pb.RegisterSitesRequest
		wants []sitestate.SiteRecord
	}{
		{"a township with its communities, at the district", epParent, tier.District, &pb.RegisterSitesRequest{FromSite: epSite, Sites: []*pb.SiteRecord{
			{Code: epChild, Tier: "community", Parent: epSite, Nodes: []string{"c1"}, Leader: "c1"},
			{Code: epSite, Tier: "township", Parent: epParent, Nodes: []string{"a", "b"}, Leader: "a"},
			{Code: epChild2, Tier: "community", Parent: epSite},
		}}, []sitestate.SiteRecord{
			{Code: epChild, Tier: "community", Parent: epSite, Nodes: []string{"c1"}, Leader: "c1"},
			{Code: epSite, Tier: "township", Parent: epParent, Nodes: []string{"a", "b"}, Leader: "a"},
			{Code: epChild2, Tier: "community", Parent: epSite},
		}},
		// A retired site says so: its parent keeps it, so that a restored site comes back retired.
		{"a retired community, at its township", epSite, tier.Township, &pb.RegisterSitesRequest{FromSite: epChild, Sites: []*pb.SiteRecord{
			{Code: epChild, Tier: "community", Parent: epSite, Nodes: []string{"c1", "c2", "c3"}, Leader: "c2", Retired: true, RetiredReason: "merged into " + epChild2},
		}}, []sitestate.SiteRecord{
			{Code: epChild, Tier: "community", Parent: epSite, Nodes: []string{"c1", "c2", "c3"}, Leader: "c2", Retired: true, RetiredReason: "merged into " + epChild2},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			state := &fakeRegistry{}
			if _, err := serveRegistry(t, tt.site, tt.tier, state).RegisterSites(testContext(t), tt.req); err != nil {
				t.Fatal(err)
			}
			if got := state.registered(); len(got) != 1 || !reflect.DeepEqual(got[0], tt.wants) {
				t.Fatalf("registered %+v, want %+v", got, tt.wants)
			}
		})
	}
}

func TestRegisterSitesRefusals(t *testing.T) {
	township := &pb.SiteRecord{Code: epSite, Tier: "township", Parent: epParent}
	tests := []struct {
		name  string
		site  string // the site registered at, a district unless it is epSite (a township)
		from  string
		sites []*pb.SiteRecord
		err   error // the state's answer
		code  codes.Code
		msg   string // a part of the status message
		state bool   // whether the state is asked
	}{
		{"no records", epParent, epSite, nil, nil, codes.InvalidArgument, "lacks its own record", false},
		{"the sender's own record missing", epParent, epSite, []*pb.SiteRecord{
			{Code: epChild, Tier: "community", Parent: epSite},
		}, nil, codes.InvalidArgument, "lacks its own record", false},
		{"no sender", epParent, "", []*pb.SiteRecord{township}, nil, codes.InvalidArgument, "lacks its own record", false},
		{"a child of the wrong tier", epParent, epSite, []*pb.SiteRecord{
			{Code: epSite, Tier: "community", Parent: epParent},
		}, nil, codes.InvalidArgument, "cannot hang under", false},
		{"a district under the district", epParent, epSite, []*pb.SiteRecord{
			{Code: epSite, Tier: "district", Parent: epParent},
		}, nil, codes.InvalidArgument, "cannot hang under", false},
		{"a township under a township", epSite, "cd-dgdj2", []*pb.SiteRecord{
			{Code: "cd-dgdj2", Tier: "township", Parent: epSite},
		}, nil, codes.InvalidArgument, "cannot hang under", false},
		{"a child naming another parent", epParent, epSite, []*pb.SiteRecord{
			{Code: epSite, Tier: "township", Parent: "cd2"},
		}, nil, codes.InvalidArgument, "cannot hang under", false},
		{"a record not under the sender", epParent, epSite, []*pb.SiteRecord{
			township, {Code: "cd-other-x", Tier: "community", Parent: "cd-other"},
		}, nil, codes.InvalidArgument, `site "cd-other-x" does not hang under "cd-dgdj"'s subtree`, false},
		{"a record with no parent", epParent, epSite, []*pb.SiteRecord{
			township, {Code: epChild, Tier: "community"},
		}, nil, codes.InvalidArgument, "does not hang under", false},
		{"a record of the wrong tier under the sender", epParent, epSite, []*pb.SiteRecord{
			township, {Code: epChild, Tier: "township", Parent: epSite},
		}, nil, codes.InvalidArgument, "does not hang under", false},
		{"a record hanging under a record of the wrong tier", epParent, epSite, []*pb.SiteRecord{
			township, {Code: epChild, Tier: "community", Parent: epSite}, {Code: epChild + "-x", Tier: "community", Parent: epChild},
		}, nil, codes.InvalidArgument, "does not hang under", false},
		{"refused by the state", epParent, epSite, []*pb.SiteRecord{township},
			&sitestate.Error{Code: sitestate.CodeInvalid, Message: "refused"}, codes.InvalidArgument, "refused", true},
		{"not the leader", epParent, epSite, []*pb.SiteRecord{township}, replication.ErrNotLeader, codes.Unavailable, "", true},
		{"other", epParent, epSite, []*pb.SiteRecord{township}, errors.New("disk on fire"), codes.Internal, "disk on fire", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := tier.District
			if tt.site == epSite {
				tr = tier.Township
			}
			state := &fakeRegistry{err: tt.err}
			_, err := serveRegistry(t, tt.site, tr, state).RegisterSites(testContext(t), &pb.RegisterSitesRequest{FromSite: tt.from, Sites: tt.sites})
			st := wantStatus(t, err, tt.code)
			if !strings.Contains(st.Message(), tt.msg) {
				t.Errorf("message %q, want it to hold %q", st.Message(), tt.msg)
			}
			if n := len(state.registered()); (n == 1) != tt.state {
				t.Errorf("RegisterSites called %d times, want called=%v", n, tt.state)
			}
		})
	}
}

// A community has no children: it takes no registration.
func TestRegisterSitesAtACommunity(t *testing.T) {
	state := &fakeRegistry{}
	_, err := serveRegistry(t, epChild, tier.Community, state).RegisterSites(testContext(t), &pb.RegisterSitesRequest{
		FromSite: epChild + "-x", Sites: []*pb.SiteRecord{{Code: epChild + "-x", Tier: "community", Parent: epChild}},
	})
	wantStatus(t, err, codes.InvalidArgument)
	if n := len(state.registered()); n != 0 {
		t.Errorf("RegisterSites called %d times", n)
	}
}

// TestRegisterSitesRefusesRecordsOutsideTheSubtree: a child may not overwrite this site's own
// record, its parent's, a record named twice, or a site registered here under another parent.
func TestRegisterSitesRefusesRecordsOutsideTheSubtree(t *testing.T) {
	township := &pb.SiteRecord{Code: epSite, Tier: "township", Parent: epParent}
	for _, tt := range []struct {
		name  string
		sites []*pb.SiteRecord
		known []sitestate.SiteRecord
		want  string
	}{
		{"this site's own record", []*pb.SiteRecord{township, {Code: epParent, Tier: "community", Parent: epSite}}, nil, "not in its subtree"},
		{"a record named twice", []*pb.SiteRecord{township, {Code: epChild, Tier: "community", Parent: epSite}, {Code: epChild, Tier: "community", Parent: epSite}}, nil, "twice"},
		{"a site registered elsewhere", []*pb.SiteRecord{township, {Code: "cd-byl-qyl", Tier: "community", Parent: epSite}},
			[]sitestate.SiteRecord{{Code: "cd-byl-qyl", Tier: "community", Parent: "cd-byl"}}, "registered here under"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			state := &fakeRegistry{known: tt.known}
			c := serveRegistry(t, epParent, tier.District, state)
			_, err := c.RegisterSites(testContext(t), &pb.RegisterSitesRequest{FromSite: epSite, Sites: tt.sites})
			if st := wantStatus(t, err, codes.InvalidArgument); !strings.Contains(st.Message(), tt.want) {
				t.Fatalf("message %q, want it to say %q", st.Message(), tt.want)
			}
			if calls := state.registered(); len(calls) != 0 {
				t.Fatalf("the refused registration was committed: %v", calls)
			}
		})
	}
}
