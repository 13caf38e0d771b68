package httpapi

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/govgrid/govgrid/replication"
	"github.com/govgrid/govgrid/sitestate"
)

// BackupService is what the backup endpoints need from the node.
type BackupService interface {
	// LeaderHTTP is the HTTP address of the site's leader, and whether this node is it.
	LeaderHTTP() (addr string, isLeader bool)
	// SaveBackup writes a backup of the site to w (this node leads).
	SaveBackup(w io.Writer) (*replication.BackupInfo, error)
	// RestoreBackup replaces the site's state with the backup read from r (this node leads).
	RestoreBackup(ctx context.Context, r io.Reader, force bool) (*replication.BackupInfo, error)
}

// atLeader sends a request the leader must serve there: a 307 to the same path at the leader's
// HTTP address (the method and body are kept), or 503 when no leader is known. It reports
// whether this node serves the request itself.
func (s *server) atLeader(w http.ResponseWriter, r *http.Request) bool {
	addr, leads := s.cfg.Backups.LeaderHTTP()
	if leads {
		return true
	}
	if addr == "" {
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "unavailable", "the site has no leader to take the backup", nil)
		return false
	}
	scheme := "http://"
	if r.TLS != nil {
		scheme = "https://" // the nodes of a site serve alike
	}
	http.Redirect(w, r, scheme+addr+r.URL.RequestURI(), http.StatusTemporaryRedirect)
	return false
}

// saveBackup streams a backup of the site (GET /v1/snapshot). A backup holds every case with its
// applicant's identity: it is an administrator's (see administer).
func (s *server) saveBackup(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.administer(w, r); !ok {
		return
	}
	if !s.atLeader(w, r) {
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", "govgrid-"+time.Now().UTC().Format("20060102T150405Z")+".backup"))
	// The copy is taken from one pinned view after a barrier; a failure midway ends the stream
	// early, and the truncated file does not pass its checksum.
	if _, err := s.cfg.Backups.SaveBackup(w); err != nil {
		s.cfg.Logger.Error("backup failed", "error", err)
	}
}

// restoreBackup replaces the site's state with the backup in the body
// (POST /v1/snapshot/restore?force=true), for an administrator (see administer).
func (s *server) restoreBackup(w http.ResponseWriter, r *http.Request) {
	by, ok := s.administer(w, r)
	if !ok {
		return
	}
	if !s.atLeader(w, r) {
		return
	}
	s.audit(r, by, sitestate.AuditSiteChanged, "restore", r.URL.RawQuery)
	force, _ := strconv.ParseBool(r.URL.Query().Get("force"))
	info, err := s.cfg.Backups.RestoreBackup(r.Context(), r.Body, force)
	if err != nil {
		if err == replication.ErrNotLeader {
			s.atLeader(w, r)
			return
		}
		s.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, info)
}
