package node

import (
	"encoding/json"
	"errors"
	"maps"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	pb "github.com/govgrid/govgrid/api/govgridpb"
	"github.com/govgrid/govgrid/replication"
	"github.com/govgrid/govgrid/sitestate"
	"google.golang.org/grpc/codes"
)

// fakeConfig is a configState: it records what it is asked and answers docs, or err.
type fakeConfig struct {
	mu    sync.Mutex
	known []map[string]uint64
	max   []int
	docs  []sitestate.ConfigDoc
	err   error
}

func (f *fakeConfig) ConfigSince(known map[string]uint64, max int) ([]sitestate.ConfigDoc, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.known = append(f.known, maps.Clone(known))
	f.max = append(f.max, max)
	return f.docs, f.err
}

// asked returns the versions and the maximum of every call so far.
func (f *fakeConfig) asked() ([]map[string]uint64, []int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.known), slices.Clone(f.max)
}

func serveConfig(t *testing.T, state *fakeConfig) pb.ClusterClient {
	return serveCluster(t, &clusterServer{configEndpoint: &configEndpoint{site: epSite, tree: epTree, state: state}})
}

func TestConfigSinceServesAChild(t *testing.T) {
	at := time.Date(2026, 11, 25, 9, 30, 0, 0, time.UTC)
	docs := []sitestate.ConfigDoc{
		{Owner: epParent, Path: "catalogue/items", Version: 5, UpdatedAt: at, Value: json.RawMessage(`{"QT-0010":"居住证办理"}`)},
		{Owner: epSite, Path: "hours", Version: 2, UpdatedAt: at.Add(time.Hour), Deleted: true},
	}
	state := &fakeConfig{docs: docs}
	known := map[string]uint64{epParent: 4, epSite: 1}
	resp, err := serveConfig(t, state).ConfigSince(testContext(t), &pb.ConfigSinceRequest{FromSite: epChild, Known: known})
	if err != nil {
		t.Fatal(err)
	}
	if gotKnown, gotMax := state.asked(); len(gotKnown) != 1 || !reflect.DeepEqual(gotKnown[0], known) || gotMax[0] != configBatch {
		t.Errorf("ConfigSince asked with %v, max %v; want %v, max %d", gotKnown, gotMax, known, configBatch)
	}
	// The documents travel as JSON, as the child's config sync decodes them.
	if len(resp.GetDocs()) != len(docs) {
		t.Fatalf("%d documents, want %d", len(resp.GetDocs()), len(docs))
	}
	for i, b := range resp.GetDocs() {
		var got sitestate.ConfigDoc
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		if got.Owner != docs[i].Owner || got.Path != docs[i].Path || got.Version != docs[i].Version ||
			!got.UpdatedAt.Equal(docs[i].UpdatedAt) || string(got.Value) != string(docs[i].Value) || got.Deleted != docs[i].Deleted {
			t.Errorf("document %d = %+v, want %+v", i, got, docs[i])
		}
	}

	// Nothing new is an empty answer, not an error.
	state.docs = nil
	resp, err = serveConfig(t, state).ConfigSince(testContext(t), &pb.ConfigSinceRequest{FromSite: epChild2})
	if err != nil || len(resp.GetDocs()) != 0 {
		t.Fatalf("ConfigSince with nothing new: %v %v", resp, err)
	}
}

func TestConfigSinceErrors(t *testing.T) {
	for _, tt := range []struct {
		name  string
		from  string
		err   error // the state's answer
		code  codes.Code
		asked bool
	}{
		{"no from_site", "", nil, codes.InvalidArgument, false},
		// Configuration flows down only: the parent, a site elsewhere and a stranger get none.
		{"the parent", epParent, nil, codes.PermissionDenied, false},
		{"a site elsewhere", "cd-other", nil, codes.PermissionDenied, false},
		{"a stranger", "cd-new", nil, codes.PermissionDenied, false},
		{"itself", epSite, nil, codes.PermissionDenied, false},
		{"not the leader", epChild, replication.ErrNoLeader, codes.Unavailable, true},
		{"other", epChild, errors.New("disk on fire"), codes.Internal, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			state := &fakeConfig{err: tt.err}
			_, err := serveConfig(t, state).ConfigSince(testContext(t), &pb.ConfigSinceRequest{FromSite: tt.from})
			wantStatus(t, err, tt.code)
			if known, _ := state.asked(); (len(known) == 1) != tt.asked {
				t.Errorf("ConfigSince asked %d times, want asked=%v", len(known), tt.asked)
			}
		})
	}
}
