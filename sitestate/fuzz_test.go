package sitestate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/replication"
	"github.com/govgrid/govgrid/tier"
	"github.com/hashicorp/raft"
)

// fuzzReader turns fuzz bytes into choices; when they run out every choice is 0.
type fuzzReader struct{ b []byte }

func (r *fuzzReader) byte() byte {
	if len(r.b) == 0 {
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *fuzzReader) n(limit int) int { return int(r.byte()) % limit }

func (r *fuzzReader) bytes(limit int) []byte {
	n := min(r.n(limit), len(r.b))
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

// fuzzCommands builds a log for one township from fuzz bytes: submissions (some valid, some
// retried, some invalid, some decided above), moves of the numbers seen so far, deliveries of
// records made by a second site, settlements, feed batches, trims, configuration, restores,
// prunes, and commands of any type with arbitrary payloads. Its commands change with the state
// they meet, so two replicas must take them the same way.
func fuzzCommands(data []byte) []*raft.Log {
	r := &fuzzReader{b: data}
	at := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	var logs []*raft.Log
	var numbers []string
	add := func(t replication.CommandType, payload any) {
		body, ok := payload.([]byte)
		if !ok {
			body, _ = json.Marshal(payload)
		}
		at = at.Add(time.Duration(r.n(120)) * time.Minute)
		logs = append(logs, &raft.Log{Index: uint64(len(logs) + 1), Term: 1, Type: raft.LogCommand, Data: replication.StampedCommand(t, body, at)})
	}
	number := func() string {
		if len(numbers) == 0 || r.n(8) == 0 {
			return fmt.Sprintf("cd-dgdj-2026112%d-%06d", r.n(3)+5, r.n(50))
		}
		return numbers[r.n(len(numbers))]
	}
	site := func() string { return []string{"cd", "cd-dgdj", "cd-dgdj-ngj", "cd-byl", "", "x"}[r.n(6)] }
	for len(r.b) > 0 && len(logs) < 200 {
		switch r.n(15) {
		case 0, 1:
			sub := testSubmission(r.n(20))
			sub.DecideTier = []string{"", "community", "township", "district", "city"}[r.n(5)]
			if r.n(6) == 0 {
				sub.Applicant = nil
			}
			c := &submitCommand{Submission: sub, Site: "cd-dgdj", Tier: tier.Township, Parent: "cd", QueryCode: "123456"}
			if r.n(2) == 0 {
				add(cmdSubmitCase, c) // as entries of earlier versions
			} else {
				body, _ := encodeSubmitCommand(c)
				add(cmdSubmitCasePB, body)
			}
			numbers = append(numbers, fmt.Sprintf("cd-dgdj-%s-%06d", at.In(testLoc).Format("20060102"), len(numbers)+1))
		case 2:
			add(cmdDepart, &departCommand{Number: number(), Move: []casework.Move{"escalate", "handdown", "return", "relay", "jump"}[r.n(5)], Site: "cd-dgdj", To: site()})
		case 3:
			c := &casework.Case{Number: number(), HolderSite: site(), Version: uint64(r.n(5))}
			rec, _ := json.Marshal(c)
			if r.n(2) == 0 {
				rec = r.bytes(64)
			}
			add(cmdArrive, &arriveCommand{Site: "cd-dgdj", Tier: tier.Township, Parent: "cd", Arrivals: []Arrival{{ID: casework.HandoffID(c.Number, uint64(r.n(5))), From: site(), Record: json.RawMessage(rec)}}})
		case 4:
			add(cmdSettle, &settleCommand{Settlements: []Settlement{{ID: casework.HandoffID(number(), uint64(r.n(6))), Refused: r.n(2) == 0, Reason: "x"}}})
		case 5:
			e := FeedEntry{Seq: uint64(r.n(6)), Origin: site(), At: at, Case: &casework.Case{Number: number(), Version: uint64(r.n(9)), Status: "submitted"}}
			if r.n(3) == 0 {
				e.Case = nil
			}
			b, _ := json.Marshal(e)
			add(cmdMirror, &mirrorCommand{Child: site(), Entries: []json.RawMessage{b}, Head: uint64(r.n(9)), Resync: r.n(3) == 0, ResyncCursor: uint64(r.n(4))})
		case 6:
			add(cmdTrimFeed, &trimFeedCommand{Upto: uint64(r.n(20))})
		case 7:
			add(cmdConfigPut, &configPutCommand{Owner: site(), Path: []string{"a/b", "", "x//y", "c"}[r.n(4)], Value: json.RawMessage(r.bytes(16)), Delete: r.n(3) == 0})
		case 8:
			if r.n(2) == 0 {
				add(cmdConfigPutMany, &configPutManyCommand{Owner: site(), Changes: []ConfigChange{
					{Path: "a/b", Value: json.RawMessage(`1`)}, {Path: []string{"c", "", "d"}[r.n(3)], Value: json.RawMessage(r.bytes(8)), Delete: r.n(3) == 0}}})
				break
			}
			add(cmdConfigSync, &configSyncCommand{Docs: []ConfigDoc{{Owner: site(), Path: "a/b", Version: uint64(r.n(5)), Value: json.RawMessage(`1`), Deleted: r.n(2) == 0}}})
		case 9:
			c := &casework.Case{Number: number(), HolderSite: site(), OriginSite: site(), Version: uint64(r.n(9)), RequestID: "req-1"}
			add(cmdRestore, &restoreCommand{Site: "cd-dgdj", Begin: r.n(3) == 0, Cases: []*casework.Case{c}, FeedSeq: uint64(r.n(5)), Done: r.n(3) == 0,
				QueryCodes: map[string]string{c.Number: "654321"}, Config: []ConfigDoc{{Owner: "cd-dgdj", Path: "p", Version: uint64(r.n(3)), Value: json.RawMessage(`2`)}}})
		case 10:
			add(cmdRegisterSites, &registerCommand{Sites: []SiteRecord{{Code: site(), Tier: []string{"township", "community", ""}[r.n(3)], Parent: site(), Retired: r.n(2) == 0}}})
		case 11:
			if r.n(4) == 0 {
				add(cmdSiteKey, &siteKeyCommand{Seed: r.bytes(32)})
				break
			}
			if r.n(3) == 0 {
				add(cmdAudit, &auditCommand{Events: []AuditEvent{{At: at, Kind: []string{AuditSignIn, ""}[r.n(2)], User: site()}}})
				break
			}
			add(cmdRetire, &retireCommand{Retired: r.n(2) == 0, Reason: "r"})
		case 12:
			add(cmdPrune, &pruneCommand{Requests: []string{fmt.Sprintf("req-%d", r.n(20))}, Stubs: []string{number()}, Handoffs: []string{casework.HandoffID(number(), uint64(r.n(5)))}})
		case 13:
			// Any command type, with any payload.
			add(replication.CommandType(1+r.n(17)), r.bytes(48))
		case 14:
			req := casework.StepRequest{Step: casework.Steps[r.n(len(casework.Steps))], Actor: []string{"a", "b", ""}[r.n(3)],
				Role: "clerk", Site: "cd-dgdj", SiteTier: []string{"township", "district"}[r.n(2)], Reason: "r", LegalBasis: "l",
				Missing: []string{"户口簿"}, Materials: []casework.Material{{Name: "户口簿"}}, Department: "rs"}
			rules := casework.ItemRules{Mode: casework.Modes[r.n(len(casework.Modes))], JointDepartments: []string{"rs"},
				RequiredMaterials: [][]string{nil, {"户口簿"}}[r.n(2)], DecideTier: []string{"", "township", "district"}[r.n(3)]}
			add(cmdCaseStep, &stepCommand{Number: number(), Request: req, Rules: rules, Tier: tier.Township, Parent: "cd"})
		}
	}
	return logs
}

// FuzzStateMachine feeds a site's state machine arbitrary command sequences (and arbitrary bytes
// as commands) and checks that no applier panics and that two replicas, one applying the log
// entry by entry and one in uneven batches, end with the same bytes.
func FuzzStateMachine(f *testing.F) {
	f.Add([]byte{0, 2, 0, 0, 1, 3, 2, 4, 0, 5, 1, 9, 2, 3, 5, 6, 7, 8, 12, 9, 1, 1, 11, 13, 4, 5})
	f.Add(bytes.Repeat([]byte{0, 3, 1, 2, 9, 9}, 30))
	f.Add([]byte("submit, then everything at once: \x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d"))
	f.Fuzz(func(t *testing.T, data []byte) {
		logs := fuzzCommands(data)
		one := openSite(t, "cd-dgdj", tier.Township, "cd", "") // in memory: many runs a second
		for _, l := range logs {
			one.local.Apply([]*raft.Log{l})
		}
		batched := openSite(t, "cd-dgdj", tier.Township, "cd", "")
		for i := 0; i < len(logs); {
			n := 1 + int(data[i%max(len(data), 1)])%17
			batched.local.Apply(logs[i:min(i+n, len(logs))])
			i += n
		}
		if p := one.local.Panics() + batched.local.Panics(); p > 0 {
			t.Fatalf("%d commands panicked while applied (refused, but each is a bug)", p)
		}
		if a, b := one.export(), batched.export(); !maps.EqualFunc(a, b, bytes.Equal) {
			t.Fatalf("the same log gave two states: %d keys one by one, %d in batches", len(a), len(b))
		}
	})
}
