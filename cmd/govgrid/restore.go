package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/govgrid/govgrid/node"
	"github.com/govgrid/govgrid/replication"
	"github.com/spf13/cobra"
)

// newSiteRestoreCommand is `govgrid site restore --from-parent`: start a fresh node of a site
// whose data is lost, rebuild the site from its parent's mirror (with a progress bar), then go
// on serving as `govgrid agent` with the same settings.
func newSiteRestoreCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "restore --from-parent [agent flags]",
		Short: "Rebuild a lost site from its parent's mirror on a fresh node, then serve it (恢复站点)",
		Long: `Rebuild a site whose data is lost (its only node's disk, or all its nodes) from its parent
site's mirror: the cases it held with their histories and pending handoffs, pointers to the cases it
handed on, and its number counters (new numbers start past any it may have given). Run it on a fresh
node with the site's usual agent settings (--site, --tier, --parent, --join, ...) and an empty
--data-dir. Once restored, the node goes on serving like ` + "`govgrid agent`" + `.`,
		Args: cobra.NoArgs,
	}
	fromParent := cmd.Flags().Bool("from-parent", false, "restore from the parent site's mirror (required: the only source there is)")
	agentFlags(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if !*fromParent {
			return errors.New("--from-parent is required: a site is restored from its parent's mirror")
		}
		cfg, leave, err := agentConfig(cmd.Flags())
		if err != nil {
			return err
		}
		if cfg.Parent == "" {
			return errors.New("--parent: the district has no parent to restore from")
		}
		if err := checkFreshDataDir(cfg.DataDir); err != nil {
			return err
		}
		bar := newProgressBar(cmd.ErrOrStderr())
		cfg.RestoreFromParent = true
		cfg.RestoreProgress = bar.update
		return runAgent(cfg, leave, func(ctx context.Context, n *node.Node) error {
			fmt.Fprintf(cmd.ErrOrStderr(), "恢复站点 restoring site %s from its parent %s ...\n", cfg.Site, cfg.Parent)
			t := time.NewTicker(100 * time.Millisecond)
			defer t.Stop()
			for n.Restoring() {
				select {
				case <-ctx.Done():
					return errors.New("interrupted before the restore finished: run it again on the same data dir to go on")
				case <-t.C:
				}
			}
			bar.finish()
			fmt.Fprintf(cmd.OutOrStdout(), "已恢复 restored: site %s has its cases back and serves again; Ctrl-C stops it\n", cfg.Site)
			return nil
		})
	}
	return cmd
}

// checkFreshDataDir refuses a data dir that already holds a site's state: restore is for a node
// whose data is lost (an interrupted restore may be run again: the site records how far it got).
func checkFreshDataDir(dir string) error {
	if !replication.HasLog(dir) {
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, node.RestoreMarker)); err == nil {
		return nil
	}
	return fmt.Errorf("--data-dir %s already holds a site's data: restore is for a node whose data is lost; start it with `govgrid agent`", dir)
}

// progressBar draws "[#####-----] 640/1280 cases" on one line of a terminal (or a log).
type progressBar struct {
	w    io.Writer
	mu   sync.Mutex
	last time.Time
}

func newProgressBar(w io.Writer) *progressBar { return &progressBar{w: w} }

func (b *progressBar) update(done, total int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if done < total && time.Since(b.last) < 100*time.Millisecond {
		return
	}
	b.last = time.Now()
	fmt.Fprintf(b.w, "\r%s", renderBar(done, total, 30))
}

func (b *progressBar) finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	fmt.Fprintln(b.w)
}

func renderBar(done, total, width int) string {
	if total <= 0 {
		return "[" + strings.Repeat("#", width) + "] 0/0 cases (the parent holds nothing of this site)"
	}
	filled := min(width, done*width/total)
	return fmt.Sprintf("[%s%s] %d/%d cases %3d%%", strings.Repeat("#", filled), strings.Repeat("-", width-filled), done, total, done*100/total)
}
