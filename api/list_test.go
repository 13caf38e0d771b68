package api

import (
	"errors"
	"testing"
	"time"

	"github.com/govgrid/govgrid/casework"
)

func TestListRequestCheck(t *testing.T) {
	day := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		req     ListRequest
		fields  []string // every field reported, in order; nil for a valid request
		subtree bool
	}{
		{name: "defaults", req: ListRequest{}},
		{name: "local scope", req: ListRequest{Scope: "local", Status: "submitted", PageSize: 500}},
		{name: "subtree with site and tier", req: ListRequest{Scope: "subtree", Site: "cd-dgdj", Tier: "township"}, subtree: true},
		{name: "page size 0 is the default", req: ListRequest{PageSize: 0}},
		{name: "page size too big", req: ListRequest{PageSize: 501}, fields: []string{"page_size"}},
		{name: "page size negative", req: ListRequest{PageSize: -1}, fields: []string{"page_size"}},
		{name: "bad kind and scope", req: ListRequest{Kind: "x", Scope: "all"}, fields: []string{"kind", "scope"}},
		{name: "site outside the subtree", req: ListRequest{Site: "cd"}, fields: []string{"scope"}},
		{name: "bad tier and site", req: ListRequest{Scope: "subtree", Tier: "city", Site: "Bad Site"}, fields: []string{"tier", "site"}},
		{name: "to before from", req: ListRequest{From: day, To: day.Add(-time.Hour)}, fields: []string{"to"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, subtree, err := tc.req.Check()
			var fe casework.FieldErrors
			errors.As(err, &fe)
			var got []string
			for _, e := range fe {
				got = append(got, e.Field)
			}
			if len(got) != len(tc.fields) {
				t.Fatalf("fields %v, want %v (%v)", got, tc.fields, err)
			}
			for i := range got {
				if got[i] != tc.fields[i] {
					t.Fatalf("fields %v, want %v", got, tc.fields)
				}
			}
			if err == nil && subtree != tc.subtree {
				t.Fatalf("subtree %v, want %v", subtree, tc.subtree)
			}
		})
	}
}
