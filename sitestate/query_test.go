package sitestate

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/tier"
)

// submitSchedule submits n cases a second apart from 2026-11-25 15:59 UTC (across midnight in
// Shanghai), with every tenth a retry of an earlier request and every seventh invalid, and
// returns how many distinct cases it opened.
func submitSchedule(s *site, n int) int {
	ids := map[string]bool{}
	for i := range n {
		sub := testSubmission(i)
		if i%10 == 9 {
			sub.RequestID = fmt.Sprintf("req-%d", i-5)
		}
		if i%7 == 6 {
			sub.Applicant = nil
		} else {
			ids[sub.RequestID] = true
		}
		s.now = time.Date(2026, 11, 25, 15, 59, 0, 0, time.UTC).Add(time.Duration(i) * time.Second)
		s.apply(cmdSubmitCase, &submitCommand{Submission: sub, Site: s.code, Tier: tier.District, QueryCode: "135790"})
	}
	return len(ids)
}

func TestListCasesPagingAndFilters(t *testing.T) {
	s := newSite(t, "cd")
	want := submitSchedule(s, 100)
	all := map[string]bool{}
	token := ""
	var last time.Time
	for {
		p, err := s.st.ListCases(Filter{Limit: 7, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range p.Cases {
			if all[c.Number] {
				t.Fatalf("%s listed twice", c.Number)
			}
			if !last.IsZero() && c.CreatedAt.After(last) {
				t.Fatalf("listing is not newest first at %s", c.Number)
			}
			last = c.CreatedAt
			all[c.Number] = true
		}
		if p.NextPageToken == "" {
			break
		}
		token = p.NextPageToken
	}
	if len(all) != want {
		t.Fatalf("paged through %d cases, want %d", len(all), want)
	}
	from := time.Date(2026, 11, 25, 16, 0, 30, 0, time.UTC)
	p, err := s.st.ListCases(Filter{Status: casework.StatusSubmitted, From: from, Limit: MaxPageSize})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range p.Cases {
		if c.CreatedAt.Before(from) {
			t.Fatalf("%s is before the from bound", c.Number)
		}
	}
	if len(p.Cases) == 0 || len(p.Cases) >= want {
		t.Fatalf("from filter kept %d of %d", len(p.Cases), want)
	}
	if p, _ := s.st.ListCases(Filter{Kind: casework.KindGrievance}); len(p.Cases) != 0 {
		t.Fatal("kind filter matched applications")
	}
	if _, err := s.st.ListCases(Filter{PageToken: "not-a-token!"}); err == nil || !strings.Contains(err.Error(), "page_token") {
		t.Fatalf("bad token: %v", err)
	}
}
