package replication

import (
	"testing"
)

func (s *site) feed(from uint64) []FeedEntry {
	s.t.Helper()
	out, _, err := (&Store{fsm: s.f}).ReadFeed(from, 1<<20)
	if err != nil {
		s.t.Fatal(err)
	}
	return out
}

func (s *site) mirrorOf(child *site, entries []FeedEntry) *result {
	s.t.Helper()
	return s.apply(cmdMirror, &mirrorCommand{Child: child.code, Entries: entries, Head: uint64(len(entries))})
}

func TestFeedIsDenseAndTheMirrorKeepsTheNewest(t *testing.T) {
	community, township, district := newSite(t, "cd-dgdj-ngj"), newSite(t, "cd-dgdj"), newSite(t, "cd")
	c := community.submit(1, township.code) // accepted and departed in one commit: one entry
	community.submit(2, "")
	out := deliver(t, community, township, "")
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
	state := mustExport(t, township.f)
	if res := township.mirrorOf(community, feed); res.Err != nil {
		t.Fatal(res.Err)
	}
	assertStateUnchanged(t, township.f, state)

	// The township's own arrival (version 3) came before the community's entry (version 2)
	// was mirrored: the mirror kept version 3 and did not re-export the older one.
	rec, err := (&Store{fsm: township.f}).MirrorCase(c.Number)
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
	page, err := (&Store{fsm: district.f}).ListMirror(MirrorFilter{})
	if err != nil || len(page.Records) != 2 {
		t.Fatalf("district mirror: %d records, %v", len(page.Records), err)
	}
	for _, r := range page.Records {
		if r.Via != township.code {
			t.Fatalf("record of %s came via %q", r.Case.Number, r.Via)
		}
	}
}

func TestMirrorRefusesAGapAndKeepsWhatCameBefore(t *testing.T) {
	community, township := newSite(t, "cd-dgdj-ngj"), newSite(t, "cd-dgdj")
	for i := range 4 {
		community.submit(i, "")
	}
	feed := community.feed(1)
	res := township.mirrorOf(community, []FeedEntry{feed[0], feed[1], feed[3]})
	if res.Err == nil || res.Err.Code != CodeConflict {
		t.Fatalf("batch with a gap: %+v, want a conflict", res.Err)
	}
	cur, err := (&Store{fsm: township.f}).FeedCursors()
	if err != nil || cur[community.code].Cursor != 2 {
		t.Fatalf("cursor after the gap: %+v %v, want 2", cur, err)
	}
	// Starting again from the cursor fills it.
	if res := township.mirrorOf(community, feed[2:]); res.Err != nil {
		t.Fatal(res.Err)
	}
	page, _ := (&Store{fsm: township.f}).ListMirror(MirrorFilter{})
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
	if _, _, err := (&Store{fsm: community.f}).ReadFeed(2, 10); err == nil {
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
