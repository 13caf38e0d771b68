package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/govgrid/govgrid/replication"
	"github.com/spf13/cobra"
)

// Backups of a site (node/backup.go): save one through any node (the site's leader takes it),
// restore one into a fresh site of the same code, and look inside one offline.
func newSnapshotCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "snapshot",
		Short: "Back up a site, restore a backup into a fresh site, or look inside one",
		Long: `A backup is a consistent point-in-time copy of one site's state, taken at its leader after
every committed change is applied, with a SHA-256 checksum. Restoring it replaces the state of
every node of a fresh site of the same code; the site then asks its parent and children for what
they learnt since, and issues new case numbers from its restore reserve.

  govgrid snapshot save --addr 10.0.0.11:8080 /backup/cd-$(date +%F).backup
  govgrid snapshot inspect /backup/cd-2026-11-28.backup
  govgrid snapshot restore --addr 10.0.0.11:8080 /backup/cd-2026-11-28.backup

Until accounts exist, a node takes and restores backups only for its own host (loopback).`,
	}
	cmd.AddCommand(newSnapshotSaveCommand(), newSnapshotRestoreCommand(), newSnapshotInspectCommand())
	return cmd
}

// noRedirect lets the CLI follow the node's 307 to the leader itself, body included.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// atLeader sends req; on a 307 to the site's leader, sends it again there (once), with the body
// body makes anew.
func atLeader(method, addr, path string, body func() io.Reader) (*http.Response, error) {
	url := addr
	if !strings.Contains(url, "://") {
		url = "http://" + url
	}
	url += path
	authz, err := authorization()
	if err != nil {
		return nil, err
	}
	for range 2 {
		req, err := http.NewRequest(method, url, body())
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/octet-stream")
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		client, err := withCA(noRedirect)
		if err != nil {
			return nil, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusTemporaryRedirect {
			return resp, nil
		}
		url = resp.Header.Get("Location")
		resp.Body.Close()
	}
	return nil, fmt.Errorf("%s %s: the leader moved twice; try again", method, path)
}

// answerError is the error of resp, a non-2xx answer to method path.
func answerError(resp *http.Response, method, path string) error {
	data, _ := io.ReadAll(resp.Body)
	return newAPIError(method, path, resp, data)
}

func newSnapshotSaveCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "save FILE", Short: "Save a backup of the site of the node at --addr", Args: cobra.ExactArgs(1)}
	addr := addrFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		path := args[0]
		resp, err := atLeader(http.MethodGet, *addr, "/v1/snapshot", func() io.Reader { return nil })
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return answerError(resp, "GET", "/v1/snapshot")
		}
		tmp, err := os.CreateTemp(filepath.Dir(path), ".govgrid-backup-*")
		if err != nil {
			return err
		}
		defer os.Remove(tmp.Name())
		if _, err := io.Copy(tmp, resp.Body); err != nil {
			tmp.Close()
			return fmt.Errorf("the backup stream broke: %w", err)
		}
		// Check the file before calling it a backup: a stream that ended early fails here.
		info, _, err := replication.ReadBackupInfo(tmp)
		if err != nil {
			tmp.Close()
			return err
		}
		if err := tmp.Sync(); err != nil {
			tmp.Close()
			return err
		}
		if err := tmp.Close(); err != nil {
			return err
		}
		if err := os.Rename(tmp.Name(), path); err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "saved %s: %s, index %d, taken %s by %s, %d bytes of state\n",
			path, backupOf(info), info.Index, info.TakenAt.Format("2006-01-02 15:04:05 MST"), info.Node, info.StateBytes)
		return nil
	}
	return cmd
}

func newSnapshotRestoreCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "restore FILE", Short: "Restore a backup into the fresh site of the node at --addr", Args: cobra.ExactArgs(1)}
	addr := addrFlag(cmd)
	force := cmd.Flags().Bool("force", false, "restore over a site that holds cases, throwing them away")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		f, err := os.Open(args[0])
		if err != nil {
			return err
		}
		defer f.Close()
		if _, _, err := replication.ReadBackupInfo(f); err != nil {
			return err
		}
		path := "/v1/snapshot/restore"
		if *force {
			path += "?force=true"
		}
		resp, err := atLeader(http.MethodPost, *addr, path, func() io.Reader {
			_, _ = f.Seek(0, io.SeekStart)
			return f
		})
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return answerError(resp, "POST", path)
		}
		var info replication.BackupInfo
		if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "restored %s at index %d (taken %s); the site now asks its neighbours what they learnt since\n",
			backupOf(&info), info.Index, info.TakenAt.Format("2006-01-02 15:04:05 MST"))
		return nil
	}
	return cmd
}

func newSnapshotInspectCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "inspect FILE", Short: "Check a backup and say what it holds", Args: cobra.ExactArgs(1)}
	asJSON := cmd.Flags().Bool("json", false, "print the result as JSON")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		f, err := os.Open(args[0])
		if err != nil {
			return err
		}
		defer f.Close()
		info, offset, err := replication.ReadBackupInfo(f)
		if err != nil {
			return err
		}
		counts := map[string]int{}
		if err := replication.ScanBackup(f, info, offset, func(k, _ []byte) error {
			counts[backupKind(k)]++
			return nil
		}); err != nil {
			return err
		}
		if *asJSON {
			return printJSON(struct {
				*replication.BackupInfo
				Keys map[string]int `json:"keys"`
			}{info, counts})
		}
		out := cmd.OutOrStdout()
		fmt.Fprintf(out, "%s: a whole backup (checksum verified)\n", args[0])
		fmt.Fprintf(out, "  of       %s\n  index    %d\n  taken    %s by %s\n  state    %d bytes\n",
			backupOf(info), info.Index, info.TakenAt.Format("2006-01-02 15:04:05 MST"), info.Node, info.StateBytes)
		tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
		kinds := make([]string, 0, len(counts))
		for k := range counts {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		for _, k := range kinds {
			fmt.Fprintf(tw, "  %s\t%d\n", k, counts[k])
		}
		return tw.Flush()
	}
	return cmd
}

// backupKind names what a key of a site's state holds (sitestate/keys.go), for inspect.
func backupKind(key []byte) string {
	for _, k := range []struct{ prefix, name string }{
		{"c/", "cases held"}, {"M/", "cases mirrored (subtree)"}, {"p/", "stubs (cases handed on)"},
		{"o/", "handoffs waiting"}, {"r/", "request ids"}, {"h/", "handoffs refused"}, {"f/", "feed entries"},
		{"g/", "sites in the registry"}, {"D/", "configuration documents"}, {"k/", "children's feed cursors"},
	} {
		if bytes.HasPrefix(key, []byte(k.prefix)) {
			return k.name
		}
	}
	return "other keys"
}

func backupOf(info *replication.BackupInfo) string {
	var of struct {
		Site, Tier, Parent string
	}
	if err := json.Unmarshal(info.Of, &of); err != nil || of.Site == "" {
		return "an unknown site"
	}
	if of.Parent == "" {
		return fmt.Sprintf("site %s (%s)", of.Site, of.Tier)
	}
	return fmt.Sprintf("site %s (%s under %s)", of.Site, of.Tier, of.Parent)
}
