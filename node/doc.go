// Package node assembles one govgrid node: it opens the site's replicated store, joins the
// grid's gossip pool, forms or joins its site's Raft group, serves gRPC and HTTP, and runs the
// leader-only work of its site while it leads.
//
// New starts everything and returns once the node listens; Close (or Leave) stops it. See
// DESIGN.md in this directory for the order of start-up and shutdown and why.
package node
