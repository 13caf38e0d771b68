package node

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/govgrid/govgrid/replication"
	"github.com/govgrid/govgrid/sitestate"
	"github.com/govgrid/govgrid/tier"
)

// Backups of a site (`govgrid snapshot save|restore|inspect`): a consistent copy of the site's
// state taken at its leader, and its restore into a fresh site of the same code, through Raft on
// every node. A restored site then does what a site restored from its parent does
// (restore_worker.go): it asks its parent and its children what they learnt since the backup,
// takes no cases until then, and issues new numbers from the restore reserve.

// BackupOf is what a backup says it is of.
type BackupOf struct {
	Site   string    `json:"site"`
	Tier   tier.Tier `json:"tier"`
	Parent string    `json:"parent,omitempty"`
}

// LeaderHTTP is the HTTP address of the site's leader, and whether this node is it.
func (n *Node) LeaderHTTP() (string, bool) {
	if n.raft.IsLeader() {
		return n.Addrs().HTTP, true
	}
	leader, _ := n.raft.Leader()
	if m, ok := n.gossip.member(string(leader)); ok && leader != "" {
		return m.Meta.HTTP, false
	}
	return "", false
}

// SaveBackup writes a backup of the site to w; this node must lead the site.
func (n *Node) SaveBackup(w io.Writer) (*replication.BackupInfo, error) {
	of, err := json.Marshal(BackupOf{Site: n.cfg.Site, Tier: n.cfg.Tier, Parent: n.cfg.Parent})
	if err != nil {
		return nil, err
	}
	return n.raft.Backup(w, of)
}

// RestoreBackup replaces the site's state with the backup in r, which must be of this site.
// Unless force is set, the site must be fresh (no case held or mirrored): restoring over a
// working site would throw its newer cases away. This node must lead the site.
func (n *Node) RestoreBackup(ctx context.Context, r io.Reader, force bool) (*replication.BackupInfo, error) {
	f, err := os.CreateTemp(n.cfg.DataDir, "restore-upload-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if _, err := io.Copy(f, r); err != nil {
		return nil, fmt.Errorf("reading the backup: %w", err)
	}
	info, offset, err := replication.ReadBackupInfo(f)
	if err != nil {
		return nil, sitestate.Errorf(sitestate.CodeInvalid, "%v", err)
	}
	var of BackupOf
	if err := json.Unmarshal(info.Of, &of); err != nil || of.Site == "" {
		return nil, sitestate.Errorf(sitestate.CodeInvalid, "the backup does not say which site it is of")
	}
	if of.Site != n.cfg.Site || of.Tier != n.cfg.Tier || of.Parent != n.cfg.Parent {
		return nil, sitestate.Errorf(sitestate.CodeInvalid, "the backup is of site %s (%s under %q); this is %s (%s under %q)",
			of.Site, of.Tier, of.Parent, n.cfg.Site, n.cfg.Tier, n.cfg.Parent)
	}
	if !force {
		fresh, err := n.state.Fresh()
		if err != nil {
			return nil, err
		}
		if !fresh {
			return nil, sitestate.Errorf(sitestate.CodeConflict, "site %s holds cases or handed some on: a backup is restored into a fresh site (or with force, throwing them away)", n.cfg.Site)
		}
	}
	if !n.raft.IsLeader() {
		return nil, replication.ErrNotLeader
	}
	n.logger.Warn("restoring the site from a backup", "index", info.Index, "taken_at", info.TakenAt, "by", info.Node)
	if err := n.raft.RestoreBackup(f, info, offset); err != nil {
		return nil, err
	}
	// What the neighbours learnt since the backup comes back next (the leader finishes it).
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := n.state.BeginRestore(cctx, n.cfg.Parent); err != nil {
		return nil, err
	}
	return info, nil
}
