// Package chaos holds govgrid's robustness test: an in-process grid (testgrid) under a seeded
// schedule of faults, with clients that behave as window clerks do when the network misbehaves,
// and checks of what the design promises once the faults are healed. The package has no code of
// its own outside its tests.
//
// # Running it
//
//	go test ./chaos                         # part of `make test`: 40 s of faults (15 s with -short)
//	make chaos DURATION=10m SEED=42         # longer; SEED repeats a schedule
//	GOVGRID_CHAOS_SEED=42 GOVGRID_CHAOS_DURATION=2m go test -run TestChaos -v ./chaos
//
// The seed fixes every choice the test makes (which node dies, which link is cut, which client
// does what, which answer is treated as lost); it cannot fix the timing of goroutines, so a rerun
// with the same seed replays the same schedule, not the same interleaving. Every run logs its
// seed, and every failure names it with the command that reruns it.
//
// Broken invariants seen while the clients work are logged at once ("chaos: VIOLATION") and
// fail the test at the end.
//
// The grid runs in a child process (the test binary started again), because a node that panics
// takes its whole process down: the parent then reports the panic, the seed and the child's log
// as a test failure instead of dying. GOVGRID_CHAOS_INPROCESS=1 runs it in the test process
// (for a debugger).
//
// # The grid and the faults
//
// A district (3 nodes), a township (3 nodes) and two communities under it (1 node each). While
// the clients work, the nemesis, one fault at a time, kills a site's leader or a follower or a
// one-node community and restarts it with its data, isolates a node (a leader so isolated is
// replaced), cuts a leader from its own followers, or cuts a site from its parent, then heals;
// independently it turns message faults on the gRPC calls between nodes on and off (requests
// and answers lost, calls delivered twice at once or again later, delays that reorder them).
// Because only one node or link fault is in force at a time, a majority of every multi-node
// site is always reachable once it is healed. At the end every fault is healed and every node
// restarted.
//
// # The clients
//
// Each site has clients. A client submits cases with a request id it chooses, through any node
// of its site; on any error or timeout it sends the same request again (same request id), often
// through another node of the site, until it gets an answer; and sometimes it treats a 201 as
// lost and sends the request again anyway, at once or a little later, as a clerk whose
// connection dropped would. Some cases are submitted with a decide_tier above the site, so
// they climb by themselves; clients also move cases they know of (escalate, relay, hand down,
// return, sent to a node of the site that holds the case) and read cases by number through any
// node of the grid.
//
// Every call is signed in (Authorization: Bearer): submissions and moves as the test harness's
// member of staff of the node's own site (testgrid.StaffToken, a clerk of that site), reads as
// the district's, whose subtree is the whole grid and whose token every node takes once the
// district's key and account reached it (waited for before the clients start). Any 401 or 403
// to a client is a violation.
//
// # The checks
//
// After the faults are healed and the outboxes have drained:
//   - no node stopped on its own (and the child process did not die);
//   - every request id was always answered with the same number and the same query code (a
//     clerk who lost the receipt prints it from the retry's answer), and no two request ids
//     share a number;
//   - every acknowledged case is held by exactly one site, not in transit, with a hash-chained
//     history in which every move out of a site is followed by exactly one arrival (or one
//     refusal), and every other site it passed through keeps a stub that points to the site it
//     handed the case to;
//   - every version of a case that any answer showed is a prefix of its final history (no
//     fork, nothing rewritten);
//   - every ancestor of the holder (and the holder itself) mirrors the case at the holder's
//     version, with the same last hash; every parent's feed cursor reaches its child's head,
//     and every child has trimmed its feed behind that cursor (whichever node leads now);
//   - each site's client history is linearizable under the model below (porcupine). On a
//     violation porcupine's HTML view of the history is written and its path logged.
//
// # The model
//
// Porcupine checks each case on its own (linearizability is local: a history of independent
// objects is linearizable if the history of each is), in the history of the site that accepted
// it. One case's state is its number ("" before it exists) and the highest version a committed
// move returned. Operations:
//   - submit(request id) -> number: the first submit that takes effect creates the case with
//     that number; every later one must return the same number.
//   - get(number) -> found | not found: "not found" is legal only before the case exists, so an
//     acknowledged case read anywhere afterwards must be found. The version a read shows is not
//     constrained here: reads are answered by a node's own replica, a follower's or an
//     ancestor's mirror, which may lag by design. Staleness is bounded by the prefix check
//     above instead.
//   - move(number, verb) -> version v: a move is committed through the holder's Raft, so it must
//     return a version above that of every move that finished before it began; a refused move
//     (409, 404, 400) changes nothing.
//
// An operation without an answer (a timeout, a lost connection, a 503) may or may not have taken
// effect; it is left out of the history. That is sound for this model: its possible effects (a
// case created, a version raised) are ones the model already allows to happen unseen, since
// versions also rise on their own as handoffs arrive.
package chaos
