// Package sitestate is the state of one site: the cases it holds, the handoffs it sends and
// answers, its feed and its mirror of the subtree beneath it, its registry of sites and the
// configuration that flows down to it. The state lives in badger and changes only through the
// commands registered here (one file per capability: submit, handoff, feed, mirror, config,
// registry, restore), applied by the Raft plumbing of package replication, so every node of the
// site holds the same bytes. The domain rules themselves are in package casework.
//
// See DESIGN.md in this directory for the commands and the rules they keep.
package sitestate
