package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	pb "github.com/govgrid/govgrid/api/govgridpb"
	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/replication"
	"github.com/govgrid/govgrid/sitestate"
	"google.golang.org/grpc/codes"
)

// fakeExport is an exportState and a leaderState: it answers exp (or err) and sites, leads
// unless notLeader, and records in order what it is asked ("barrier", "export <site>",
// "sites").
type fakeExport struct {
	mu         sync.Mutex
	log        []string
	exp        *sitestate.SiteExport
	err        error
	sites      []sitestate.SiteRecord
	notLeader  bool
	barrierErr error
}

func (f *fakeExport) ExportSite(site string) (*sitestate.SiteExport, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log = append(f.log, "export "+site)
	return f.exp, f.err
}

func (f *fakeExport) Sites() ([]sitestate.SiteRecord, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log = append(f.log, "sites")
	return f.sites, nil
}

func (f *fakeExport) IsLeader() bool { return !f.notLeader }

func (f *fakeExport) Barrier(timeout time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log = append(f.log, "barrier")
	return f.barrierErr
}

func (f *fakeExport) asked() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.log)
}

// exportOf is an export of n mirrored cases of site, each of about size bytes of JSON, with
// feed cursor 7, a registry record and a configuration document.
func exportOf(site string, n, size int) *sitestate.SiteExport {
	at := time.Date(2026, 11, 25, 9, 30, 0, 0, time.UTC)
	exp := &sitestate.SiteExport{
		FeedCursor: 7,
		Site:       &sitestate.SiteRecord{Code: site, Tier: "community", Parent: epSite, Nodes: []string{"c1"}},
		Config:     []sitestate.ConfigDoc{{Owner: site, Path: "hours", Version: 3, UpdatedAt: at, Value: json.RawMessage(`"8-17"`)}},
	}
	for i := range n {
		exp.Records = append(exp.Records, &sitestate.MirrorRecord{
			Case: &casework.Case{Number: fmt.Sprintf("%s-20261125-%06d", site, i+1), HolderSite: site, Version: 1,
				Description: strings.Repeat("x", size)},
			Origin: site, At: at, MirroredAt: at.Add(time.Second), Via: site,
		})
	}
	return exp
}

// exportAll reads an ExportSite stream to its end: its chunks, or the error that ended it.
func exportAll(t *testing.T, cl pb.ClusterClient, site string) ([]*pb.ExportChunk, error) {
	t.Helper()
	stream, err := cl.ExportSite(testContext(t), &pb.ExportSiteRequest{Site: site, FromSite: site})
	if err != nil {
		return nil, err
	}
	var chunks []*pb.ExportChunk
	for {
		c, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return chunks, nil
		}
		if err != nil {
			return chunks, err
		}
		chunks = append(chunks, c)
	}
}

// serveExport serves the export endpoint of epSite, whose parent is parent.
func serveExport(t *testing.T, parent string, state *fakeExport) pb.ClusterClient {
	return serveCluster(t, &clusterServer{exportEndpoint: &exportEndpoint{
		site: epSite, parent: parent, tree: epTree, raft: state, state: state,
	}})
}

// checkRecords checks that chunks carry exp's records, in order, each once, in chunks of at most
// exportBytes (but for a single larger record), every chunk naming the total.
func checkRecords(t *testing.T, chunks []*pb.ExportChunk, exp *sitestate.SiteExport) {
	t.Helper()
	i := 0
	for j, c := range chunks {
		if c.GetTotal() != uint64(len(exp.Records)) {
			t.Errorf("chunk %d names total %d, want %d", j, c.GetTotal(), len(exp.Records))
		}
		size := 0
		for _, b := range c.GetRecords() {
			size += len(b)
			// Each record travels as the JSON the restore worker decodes.
			var rec sitestate.MirrorRecord
			if err := json.Unmarshal(b, &rec); err != nil || rec.Case == nil {
				t.Fatalf("record %d does not decode: %v", i, err)
			}
			if i >= len(exp.Records) {
				t.Fatalf("more records than the %d exported", len(exp.Records))
			}
			want := exp.Records[i]
			if rec.Case.Number != want.Case.Number || rec.Origin != want.Origin || !rec.MirroredAt.Equal(want.MirroredAt) {
				t.Errorf("record %d = %+v, want %+v", i, rec, want)
			}
			i++
		}
		if size > exportBytes && len(c.GetRecords()) > 1 {
			t.Errorf("chunk %d holds %d bytes of records, more than %d", j, size, exportBytes)
		}
		if j < len(chunks)-1 && len(c.GetRecords()) == 0 {
			t.Errorf("chunk %d is empty", j)
		}
	}
	if i != len(exp.Records) {
		t.Errorf("%d records streamed, want %d", i, len(exp.Records))
	}
}

// A parent restoring its child sends the child's records, its place in the child's feed, its
// registry record and its children; it answers from the leader, after a barrier.
func TestExportSiteToAChild(t *testing.T) {
	for _, tt := range []struct {
		name       string
		records    int
		size       int
		wantChunks int
	}{
		{"empty", 0, 0, 1}, // an empty export still says its total, cursor and record
		{"one", 1, 100, 1},
		{"chunked by size", 25, 100 << 10, 3},
		{"a record larger than a chunk", 2, exportBytes + 1, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			state := &fakeExport{exp: exportOf(epChild, tt.records, tt.size), sites: []sitestate.SiteRecord{
				{Code: epChild, Tier: "community", Parent: epSite},
				{Code: epChild + "-a", Tier: "community", Parent: epChild},
				{Code: epChild2, Tier: "community", Parent: epSite},
				{Code: epChild + "-b", Tier: "community", Parent: epChild},
			}}
			chunks, err := exportAll(t, serveExport(t, epParent, state), epChild)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := state.asked(), []string{"barrier", "export " + epChild, "sites"}; !slices.Equal(got, want) {
				t.Errorf("the state was asked %q, want %q", got, want)
			}
			if len(chunks) != tt.wantChunks {
				t.Errorf("%d chunks, want %d", len(chunks), tt.wantChunks)
			}
			checkRecords(t, chunks, state.exp)
			first := chunks[0]
			var rec sitestate.SiteRecord
			if err := json.Unmarshal(first.GetSite(), &rec); err != nil || rec.Code != epChild || rec.Parent != epSite {
				t.Errorf("first chunk's site record %s: %v", first.GetSite(), err)
			}
			if first.GetFeedCursor() != 7 || !slices.Equal(first.GetChildren(), []string{epChild + "-a", epChild + "-b"}) || len(first.GetConfig()) != 0 {
				t.Errorf("first chunk: cursor %d, children %q, %d documents; want 7, the child's children, none",
					first.GetFeedCursor(), first.GetChildren(), len(first.GetConfig()))
			}
			for j, c := range chunks[1:] {
				if c.GetFeedCursor() != 0 || c.GetSite() != nil || c.GetChildren() != nil || c.GetConfig() != nil {
					t.Errorf("chunk %d repeats what only the first carries: %v", j+1, c)
				}
			}
		})
	}
}

// A child helping restore its parent sends the records it has of it and the documents the
// parent owned; not a cursor (it has none in its parent's feed), nor a registry record.
func TestExportSiteToTheParent(t *testing.T) {
	state := &fakeExport{exp: exportOf(epParent, 3, 100)}
	chunks, err := exportAll(t, serveExport(t, epParent, state), epParent)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := state.asked(), []string{"barrier", "export " + epParent}; !slices.Equal(got, want) {
		t.Errorf("the state was asked %q, want %q", got, want)
	}
	if len(chunks) != 1 {
		t.Fatalf("%d chunks, want 1", len(chunks))
	}
	checkRecords(t, chunks, state.exp)
	c := chunks[0]
	if c.GetFeedCursor() != 0 || c.GetSite() != nil || c.GetChildren() != nil || len(c.GetConfig()) != 1 {
		t.Fatalf("chunk to the parent: cursor %d, site %s, children %q, %d documents", c.GetFeedCursor(), c.GetSite(), c.GetChildren(), len(c.GetConfig()))
	}
	var doc sitestate.ConfigDoc
	if err := json.Unmarshal(c.GetConfig()[0], &doc); err != nil || doc.Owner != epParent || doc.Path != "hours" || doc.Version != 3 {
		t.Errorf("document %s: %v", c.GetConfig()[0], err)
	}
}

func TestExportSiteErrors(t *testing.T) {
	for _, tt := range []struct {
		name   string
		parent string // epSite's parent, none for the root
		site   string
		state  *fakeExport
		code   codes.Code
		asked  []string
	}{
		{"no site", epParent, "", &fakeExport{}, codes.InvalidArgument, nil},
		// Only a neighbour helps restore a site.
		{"a site elsewhere", epParent, "cd-other", &fakeExport{}, codes.PermissionDenied, nil},
		{"an unknown site", epParent, "cd-new", &fakeExport{}, codes.PermissionDenied, nil},
		{"itself", epParent, epSite, &fakeExport{}, codes.PermissionDenied, nil},
		{"at the root, a site elsewhere", "", "cd-other", &fakeExport{}, codes.PermissionDenied, nil},
		// A follower may lag: it sends the asker to the leader.
		{"a follower", epParent, epChild, &fakeExport{notLeader: true}, codes.Unavailable, nil},
		{"the barrier fails", epParent, epChild, &fakeExport{barrierErr: replication.ErrNotLeader}, codes.Unavailable, []string{"barrier"}},
		{"nothing mirrored", epParent, epChild, &fakeExport{err: &sitestate.Error{Code: sitestate.CodeNotFound, Message: "no mirror of " + epChild}},
			codes.NotFound, []string{"barrier", "export " + epChild}},
		{"other", epParent, epChild, &fakeExport{err: errors.New("disk on fire")}, codes.Internal, []string{"barrier", "export " + epChild}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			chunks, err := exportAll(t, serveExport(t, tt.parent, tt.state), tt.site)
			wantStatus(t, err, tt.code)
			if len(chunks) != 0 {
				t.Errorf("%d chunks before the error", len(chunks))
			}
			if got := tt.state.asked(); !slices.Equal(got, tt.asked) {
				t.Errorf("the state was asked %q, want %q", got, tt.asked)
			}
		})
	}
}
