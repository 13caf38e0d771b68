// Package casework is govgrid's domain: cases (办件), applicants, materials, the history of events
// and the rules that decide what a valid submission is.
//
// It is pure and deterministic: no I/O, no clock, no randomness. The Raft FSM calls it with the
// time, numbers and codes that the site leader chose before proposing the command, so every node
// that applies the same log computes the same cases byte for byte.
package casework
