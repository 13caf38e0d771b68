package chaos

// This file is the only one that reaches into a node (node.Node and its sitestate.State)
// instead of going through the HTTP API: the final checks need a few things HTTP does not show
// (a site's stub for a case it handed on, an ancestor's mirror copy with its last hash, a
// child's real feed head, whether a child still keeps a feed entry).

import (
	"errors"

	"github.com/govgrid/govgrid/node"
	"github.com/govgrid/govgrid/sitestate"
)

// httpAddr is the address of the node's HTTP API.
func httpAddr(n *node.Node) string { return n.Addrs().HTTP }

// stoppedOnItsOwn reports whether a node the grid believes running has stopped (only Close,
// which the test calls through Kill, should stop one).
func stoppedOnItsOwn(n *node.Node) bool {
	select {
	case <-n.Done():
		return true
	default:
		return false
	}
}

// stubAt returns where n's replica of its site says case number went: the site the case was
// handed to. ok is false when the site keeps no stub for it.
func stubAt(n *node.Node, number string) (holder string, ok bool, err error) {
	st, err := n.State().GetStub(number)
	if errors.Is(err, sitestate.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return st.Holder, true, nil
}

// mirrorCopy is an ancestor's (or the holder's own) mirror record of a case.
type mirrorCopy struct {
	Version  uint64
	Holder   string
	LastHash string
}

// mirrorAt returns n's replica's mirror copy of case number.
func mirrorAt(n *node.Node, number string) (*mirrorCopy, error) {
	rec, err := n.State().MirrorCase(number)
	if err != nil {
		return nil, err
	}
	return &mirrorCopy{Version: rec.Case.Version, Holder: rec.Case.HolderSite, LastHash: rec.Case.LastHash()}, nil
}

// feedHead is the newest entry of the feed n's site offers its parent.
func feedHead(n *node.Node) (uint64, error) {
	return n.State().FeedHead()
}

// feedKeeps reports whether n's replica of its site still keeps feed entry seq (a trimmed entry
// is refused with a conflict).
func feedKeeps(n *node.Node, seq uint64) (bool, error) {
	entries, _, err := n.State().ReadFeed(seq, 1, 1<<20)
	var re *sitestate.Error
	if errors.As(err, &re) && re.Code == sitestate.CodeConflict {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return len(entries) == 1, nil
}

// feedCursor is how far n's site has mirrored child's feed.
func feedCursor(n *node.Node, child string) (uint64, error) {
	cur, err := n.State().FeedCursors()
	if err != nil {
		return 0, err
	}
	return cur[child].Cursor, nil
}
