package node

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestFailureGateCountsBeforeTrying: attempts made at once cannot pass the limit together; a
// forgiven attempt does not count; failures expire with the window.
func TestFailureGateCountsBeforeTrying(t *testing.T) {
	var g failureGate
	now := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	key := gk("u:", "admin", 5)
	var passed sync.WaitGroup
	var mu sync.Mutex
	let := 0
	for range 100 {
		passed.Add(1)
		go func() {
			defer passed.Done()
			if g.attempt(now, key) {
				mu.Lock()
				let++
				mu.Unlock()
			}
		}()
	}
	passed.Wait()
	if let != 5 {
		t.Fatalf("%d of 100 simultaneous attempts got through, want 5", let)
	}
	g.forgive(now, key)
	if !g.attempt(now, key) || g.attempt(now, key) {
		t.Fatal("a forgiven attempt still counts, or the limit moved")
	}
	if !g.attempt(now.Add(citizenWindow), key) {
		t.Fatal("failures did not expire with the window")
	}
}

// TestFailureGateKeepsLocksWhenFull: filling the table with junk keys never unlocks a locked one.
func TestFailureGateKeepsLocksWhenFull(t *testing.T) {
	var g failureGate
	now := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	target := gk("n:", "cd-20261203-000001", 5)
	for range 5 {
		g.attempt(now, target)
	}
	for i := range maxCitizenKeys + 1000 {
		g.attempt(now, gk("n:", fmt.Sprintf("junk-%d", i), 5))
	}
	if g.attempt(now, target) {
		t.Fatal("filling the table unlocked the target")
	}
	if len(g.failures) > maxCitizenKeys {
		t.Fatalf("the table holds %d keys, over %d", len(g.failures), maxCitizenKeys)
	}
	if k := gk("c:", string(make([]byte, 1000)), 1); len(k.key) != maxGateKey {
		t.Fatalf("a long key is %d bytes", len(k.key))
	}
}
