package api

import (
	"time"

	"github.com/govgrid/govgrid/sitestate"
	"github.com/govgrid/govgrid/tier"
)

// The answers of the operational endpoints, as the HTTP API sends them (snake_case JSON). The
// node builds them, httpapi serves them, and the CLI and the tests read them: one definition.

// MembersView is GET /v1/members: every node the answering node's gossip knows, alive or not.
type MembersView struct {
	// Node is the answering node's name.
	Node    string   `json:"node"`
	Members []Member `json:"members"`
}

// Member is one node as gossip sees it.
type Member struct {
	Name string `json:"name"`
	// Addr is its gossip address; Status alive, dead or left; Since when it took that status.
	Addr    string    `json:"addr"`
	Status  string    `json:"status"`
	Since   time.Time `json:"since,omitzero"`
	Site    string    `json:"site"`
	Tier    tier.Tier `json:"tier"`
	Parent  string    `json:"parent,omitempty"`
	HTTP    string    `json:"http"`
	GRPC    string    `json:"grpc"`
	Raft    string    `json:"raft"`
	Version string    `json:"version,omitempty"`
	// Meta is the same, as gossiped (short keys, for memberlist's 512-byte limit): kept for
	// clients written against earlier versions.
	Meta GossipMeta `json:"meta"`
}

// GossipMeta is a node's gossip metadata as it travels (see node.Meta).
type GossipMeta struct {
	Site    string    `json:"s"`
	Tier    tier.Tier `json:"t"`
	Parent  string    `json:"p,omitempty"`
	GRPC    string    `json:"g"`
	Raft    string    `json:"r"`
	HTTP    string    `json:"h"`
	Version string    `json:"v,omitempty"`
	Leaving bool      `json:"l,omitempty"`
}

// SitesView is GET /v1/sites: the site tree as the answering node knows it.
type SitesView struct {
	Sites []SiteView `json:"sites"`
}

// SiteView is one site of the tree.
type SiteView struct {
	Site   string    `json:"site"`
	Tier   tier.Tier `json:"tier"`
	Parent string    `json:"parent,omitempty"`
	Leader string    `json:"leader,omitempty"`
	// Health is healthy (every node alive), degraded (a majority alive) or down.
	Health string     `json:"health"`
	Nodes  []SiteNode `json:"nodes"`
	// Registered is true when the site is in the answering node's committed registry (the
	// district's holds the whole tree; a township's its subtree); false when it is only seen
	// in gossip.
	Registered bool `json:"registered"`
	// Outbox lists, for the answering node's own site only, the handoffs waiting per target: a
	// stuck handoff (its target unreachable, or not answering) shows here and on /metrics.
	Outbox []OutboxView `json:"outbox,omitempty"`
	// Retired is set, for the answering node's own site only, while it refuses handoffs.
	Retired *sitestate.RetiredState `json:"retired,omitempty"`
	// Feed is set for the answering site's children: how far its mirror is behind them.
	Feed *FeedView `json:"feed,omitempty"`
}

// SiteNode is one node of a site.
type SiteNode struct {
	Name string `json:"name"`
	// Status is alive, dead or left (gossip); unknown when gossip does not know the node.
	Status string `json:"status"`
	HTTP   string `json:"http,omitempty"`
	GRPC   string `json:"grpc,omitempty"`
}

// FeedView is how far a site has mirrored a child's feed, and what it heard of the child.
type FeedView struct {
	// Cursor is the last entry committed here; Head the child's newest entry, as it last said.
	Cursor uint64 `json:"cursor"`
	Head   uint64 `json:"head"`
	// LagKnown says whether the lag is known now: the site heard the child (an entry or a
	// heartbeat) within its feed's silence window. When it is not known, LagEntries and
	// LagSeconds are absent: a child cut off silently is never shown as caught up.
	LagKnown   bool     `json:"lag_known"`
	LagEntries *uint64  `json:"lag_entries,omitempty"`
	LagSeconds *float64 `json:"lag_seconds,omitempty"`
	// AppliedAt is when an entry of the child was last committed here.
	AppliedAt time.Time `json:"applied_at"`
	// HeardAt is when the site (its leader) last heard the child, null if not since it leads;
	// StreamUp whether the feed stream is open now.
	HeardAt  *time.Time `json:"heard_at"`
	StreamUp bool       `json:"stream_up"`
}

// OutboxView is the outbox toward one target site, and what the site heard of the target.
type OutboxView struct {
	ToSite        string  `json:"to_site"`
	Depth         int     `json:"depth"`
	OldestSeconds float64 `json:"oldest_seconds"`
	// AnsweredAt is when the target last answered a delivery (null if not since this site's
	// leader leads); FailingSince, set while deliveries fail, since when, with LastError.
	AnsweredAt   *time.Time `json:"answered_at"`
	FailingSince *time.Time `json:"failing_since,omitempty"`
	LastError    string     `json:"last_error,omitempty"`
}

// ConfigView is GET /v1/config: the configuration in force at a site.
type ConfigView struct {
	Site string `json:"site"`
	// Versions is, per owner, the highest change the site has applied.
	Versions map[string]uint64     `json:"versions"`
	Docs     []sitestate.ConfigDoc `json:"docs"`
}
