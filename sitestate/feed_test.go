package sitestate

import (
	"testing"

	"github.com/govgrid/govgrid/casework"
)

func TestFeedIsDenseAndTheMirrorKeepsTheNewest(t *testing.T) {
	community, township, district := newSite(t, "cd-dgdj-ngj"), newSite(t, "cd-dgdj"), newSite(t, "cd")
	c := community.submit(1, "township") // accepted and departed in one commit: one entry
	community.submit(2, "")
	out := deliver(t, community, township)
	settleAll(t, community, out)

	feed := community.feed(1)
	for i, e := range feed {
		if e.Seq != uint64(i+1) || e.Origin != community.code {
			t.Fatalf("entry %d: seq %d origin %s", i, e.Seq, e.Origin)
		}
	}
	if len(feed) != 2 {
		t.Fatalf("community feed has %d entries, want 2 (settling changes no version)", len(feed))
	}

	// The township mirrors the community's feed; a re-delivery changes nothing.
	if res := township.mirrorOf(community, feed); res.Err != nil {
		t.Fatal(res.Err)
	}
	state := township.export()
	if res := township.mirrorOf(community, feed); res.Err != nil {
		t.Fatal(res.Err)
	}
	assertStateUnchanged(t, township, state)

	// The township's own arrival (version 3) came before the community's entry (version 2)
	// was mirrored: the mirror kept version 3 and did not re-export the older one.
	rec, err := township.st.MirrorCase(c.Number)
	if err != nil || rec.Case.Version != 3 || rec.Case.HolderSite != township.code {
		t.Fatalf("township mirror of %s: %+v %v", c.Number, rec, err)
	}
	tfeed := township.feed(1)
	origins := map[string]int{}
	for _, e := range tfeed {
		origins[e.Origin]++
	}
	if origins[township.code] != 1 || origins[community.code] != 1 {
		t.Fatalf("township feed origins %v, want its own arrival and the community's second case", origins)
	}

	// The district mirrors the township's feed: both cases, origins kept.
	if res := district.mirrorOf(township, tfeed); res.Err != nil {
		t.Fatal(res.Err)
	}
	page, err := district.st.ListSubtree(SubtreeFilter{})
	if err != nil || len(page.Records) != 2 {
		t.Fatalf("district mirror: %d records, %v", len(page.Records), err)
	}
	for _, r := range page.Records {
		if r.Via != township.code {
			t.Fatalf("record of %s came via %q", r.Case.Number, r.Via)
		}
	}
}

func TestMirrorRefusesABatchWithAGap(t *testing.T) {
	community, township := newSite(t, "cd-dgdj-ngj"), newSite(t, "cd-dgdj")
	for i := range 4 {
		community.submit(i, "")
	}
	feed := community.feed(1)
	before := township.export()
	res := township.mirrorOf(community, []FeedEntry{feed[0], feed[1], feed[3]})
	if res.Err == nil || res.Err.Code != CodeConflict {
		t.Fatalf("batch with a gap: %+v, want a conflict", res.Err)
	}
	assertStateUnchanged(t, township, before)
	// Starting again from the cursor fills it.
	if res := township.mirrorOf(community, feed); res.Err != nil {
		t.Fatal(res.Err)
	}
	cur, err := township.st.FeedCursors()
	if err != nil || cur[community.code].Cursor != 4 {
		t.Fatalf("cursor: %+v %v, want 4", cur, err)
	}
	page, _ := township.st.ListSubtree(SubtreeFilter{})
	if len(page.Records) != 4 {
		t.Fatalf("mirror has %d cases, want 4", len(page.Records))
	}
}

func TestTrimmedFeedIsNotServed(t *testing.T) {
	community := newSite(t, "cd-dgdj-ngj")
	for i := range 5 {
		community.submit(i, "")
	}
	community.apply(cmdTrimFeed, &trimFeedCommand{Upto: 3})
	if got := community.feed(4); len(got) != 2 || got[0].Seq != 4 {
		t.Fatalf("feed from 4 after trimming to 3: %+v", got)
	}
	if _, _, err := community.st.ReadFeed(2, 10, 1<<20); err == nil {
		t.Fatal("reading trimmed entries succeeded")
	}
}

func TestTrimDropsAtMostOneTransactionsWorth(t *testing.T) {
	community := newSite(t, "cd-dgdj-ngj")
	for i := range maxTrim + 10 {
		community.submit(i, "")
	}
	community.apply(cmdTrimFeed, &trimFeedCommand{Upto: maxTrim + 10})
	if got := community.feed(maxTrim + 1); len(got) != 10 {
		t.Fatalf("after one trim command %d entries are left, want 10", len(got))
	}
}

// TestOverlappingBatchesLeaveTheNewestVersion: a parent applies an old batch after a newer,
// overlapping one was read (a new stream after a timeout or a leader change). The case rides on
// its last entry in each batch, so the parent ends with the newest version.
func TestOverlappingBatchesLeaveTheNewestVersion(t *testing.T) {
	community, township := newSite(t, "cd-dgdj-ngj"), newSite(t, "cd-dgdj")
	c := community.submit(1, "")
	for i := 2; i <= 5; i++ {
		community.submit(i, "")
	}
	a := community.feed(1) // read by the first stream: c at version 1
	if a := community.apply(cmdDepart, &departCommand{Number: c.Number, Move: casework.MoveEscalate, Site: community.code, To: township.code}); a.Err != nil {
		t.Fatal(a.Err)
	}
	community.submit(6, "")
	b := community.feed(1) // read by the second stream: c at version 2, as entry 6
	if res := township.mirrorOf(community, a); res.Err != nil {
		t.Fatal(res.Err)
	}
	if res := township.mirrorOf(community, b); res.Err != nil {
		t.Fatal(res.Err)
	}
	rec, err := township.st.MirrorCase(c.Number)
	if err != nil {
		t.Fatal(err)
	}
	if want := community.record(c.Number).Version; rec.Case.Version != want {
		t.Fatalf("the township kept version %d of %s, the community is at %d", rec.Case.Version, c.Number, want)
	}
}
