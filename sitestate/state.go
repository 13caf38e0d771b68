package sitestate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/internal/wake"
	"github.com/govgrid/govgrid/replication"
	"github.com/govgrid/govgrid/tier"
	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a site's state.
type Config struct {
	// Site is the code of the site this state belongs to; Tier its tier and Parent its parent's
	// code (empty at the district): cases decided above this tier go on up by themselves.
	Site   string
	Tier   tier.Tier
	Parent string
	// Grid is the grid's name, which a decision's seal names.
	Grid string
	// Location is the grid's time zone: it decides the day in case numbers.
	Location *time.Location
	Logger   *slog.Logger
	// Registerer receives the state's metrics; nil registers none.
	Registerer prometheus.Registerer
	// OnSitesChanged, if set, is called (on the FSM goroutine: it must not block) after a commit
	// that changed the site registry.
	OnSitesChanged func()
	// OnOutboxChanged, if set, is called (on the FSM goroutine: it must not block) after a
	// commit that queued handoffs (added, in commit order) or took them out (removed ids), and
	// with reload set after the whole state was replaced from a snapshot.
	OnOutboxChanged func(added []OutboxEntry, removed []string, reload bool)
	// QueryCodeSecret is the grid secret (pki's grid.secret): a new case keeps its citizen's code
	// as casework.QueryCodeMAC under it. It must be the same on every node of the grid (every
	// replica computes the MAC when it applies a submission); it is never written to the state.
	// Nil keeps the legacy salted hash (casework.HashQueryCode): tests, grids without a secret.
	QueryCodeSecret []byte
}

// Validate reports the first problem with c.
func (c Config) Validate() error {
	switch {
	case c.Site == "":
		return errors.New("sitestate: site is required")
	case c.Location == nil:
		return errors.New("sitestate: location is required")
	case c.Logger == nil:
		return errors.New("sitestate: logger is required")
	}
	return nil
}

// State is one node's copy of its site's state: the cases it holds, its feed and mirror, its
// outbox, registry and configuration, kept by the site's Raft group (a replication.Store) and
// changed only by the commands registered in this package. Its methods propose commands (a
// follower forwards them to the leader) and read this node's copy.
//
// Open starts Raft; Close stops it.
type State struct {
	cfg     Config
	store   *replication.Store // nil for a local state (OpenLocal)
	b       backend
	m       *machine
	feedNew wake.Signal
	// restoreCache holds what Restored last read.
	restoreCache restoreCache
}

// backend is what the state needs of the machinery under it: a replication.Store, or a
// replication.Local in tests and offline tools.
type backend interface {
	Propose(ctx context.Context, cmd []byte) (any, error)
	ProposeIdempotent(ctx context.Context, cmd []byte) (any, error)
	View(fn func(txn *badger.Txn) error) error
	ExportState() (map[string][]byte, error)
	Close() error
}

// machine holds what the appliers need; its methods are the appliers, registered per command.
type machine struct {
	loc     *time.Location
	logger  *slog.Logger
	metrics *metrics
	// queryCodeSecret keys the MAC of new cases' query codes (Config.QueryCodeSecret).
	queryCodeSecret []byte
}

// Open opens the node's stores and starts Raft with the site's commands. rc configures the Raft
// plumbing; its state-machine fields are filled here.
func Open(cfg Config, rc replication.Config) (*State, error) {
	s, err := newState(cfg, &rc)
	if err != nil {
		return nil, err
	}
	if s.store, err = replication.Open(rc); err != nil {
		return nil, err
	}
	s.b = s.store
	return s, nil
}

// OpenLocal opens a site's state at dir without Raft (replication.Local): each proposal is
// applied at once, stamped by clock (nil: time.Now). Tests use it to drive sites command by
// command; offline tools to read a state directory.
func OpenLocal(cfg Config, dir string, clock func() time.Time) (*State, error) {
	var rc replication.Config
	s, err := newState(cfg, &rc)
	if err != nil {
		return nil, err
	}
	if s.b, err = replication.OpenLocal(dir, rc, clock); err != nil {
		return nil, err
	}
	return s, nil
}

func newState(cfg Config, rc *replication.Config) (*State, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &State{cfg: cfg, m: &machine{loc: cfg.Location, logger: cfg.Logger.With("component", "sitestate"), metrics: newMetrics(cfg.Registerer),
		queryCodeSecret: append([]byte(nil), cfg.QueryCodeSecret...)}}
	rc.Commands = s.m.commands()
	rc.Answers = answerCodec{}
	rc.Refuse = refuseCommand
	rc.OnCommit = s.committed
	rc.OnRestore = s.restored
	if rc.Logger == nil {
		rc.Logger = cfg.Logger
	}
	return s, nil
}

// refuseCommand is the answer to a command the replication frame refuses itself.
func refuseCommand(err error) any {
	code := CodeInvalid
	if errors.Is(err, replication.ErrCommandTooLarge) {
		code = CodeTooLarge
	}
	return refuse(errorf(code, "%v", err))
}

// Raft is the replicated store under the state, for Raft's own business: membership,
// leadership, bootstrap. It is nil for a local state.
func (s *State) Raft() *replication.Store { return s.store }

// Close stops Raft (if any) and closes the stores.
func (s *State) Close() error { return s.b.Close() }

// Site is the code of the site this state belongs to.
func (s *State) Site() string { return s.cfg.Site }

// Answer is what the state machine answers for one command. Err is set for a refusal: the
// command was committed but changed nothing.
type Answer struct {
	Case *casework.Case `json:"case,omitempty"`
	// QueryCode is the citizen's code of a submitted case: only the site that accepted the case
	// knows it.
	QueryCode string           `json:"query_code,omitempty"`
	Duplicate bool             `json:"duplicate,omitempty"`
	Arrivals  []ArrivalOutcome `json:"arrivals,omitempty"`
	Config    *ConfigDoc       `json:"config,omitempty"`
	// Configs are the documents a config-put-many wrote.
	Configs []ConfigDoc `json:"configs,omitempty"`
	Cursor  *FeedCursor `json:"cursor,omitempty"`
	// JoinToken is the token a join-token command issued, revoked or spent.
	JoinToken *JoinToken `json:"join_token,omitempty"`
	Err       *Error     `json:"error,omitempty"`
}

// Refused reports whether the answer refuses its command (replication.Refusal).
func (a *Answer) Refused() bool { return a != nil && a.Err != nil }

func refuse(e *Error) *Answer { return &Answer{Err: e} }

type answerCodec struct{}

func (answerCodec) EncodeAnswer(a any) ([]byte, error) { return json.Marshal(a) }
func (answerCodec) DecodeAnswer(b []byte) (any, error) {
	a := new(Answer)
	return a, json.Unmarshal(b, a)
}

// effect kinds emitted by appliers, delivered once their command is committed.
type (
	outboxAdded   OutboxEntry
	outboxRemoved string
	sitesChanged  struct{}
	feedAppended  struct{}
	// restoreChanged: the site's restore state was written.
	restoreChanged struct{}
	// counted adds to the site's counters of committed work.
	counted struct{ accepted, handoffsIn, handoffsRefused int }
)

// committed dispatches the effects of a committed batch (replication's OnCommit).
func (s *State) committed(effects []any) {
	var added []OutboxEntry
	var removed []string
	var sites, feed bool
	for _, e := range effects {
		switch e := e.(type) {
		case outboxAdded:
			added = append(added, OutboxEntry(e))
		case outboxRemoved:
			removed = append(removed, string(e))
		case sitesChanged:
			sites = true
		case feedAppended:
			feed = true
		case restoreChanged:
			s.restoreCache.invalidate()
		case counted:
			s.m.metrics.casesAccepted.Add(float64(e.accepted))
			s.m.metrics.handoffsApplied.Add(float64(e.handoffsIn))
			s.m.metrics.handoffsRefused.Add(float64(e.handoffsRefused))
		}
	}
	if feed {
		s.feedNew.Notify()
	}
	if sites && s.cfg.OnSitesChanged != nil {
		s.cfg.OnSitesChanged()
	}
	if (len(added) > 0 || len(removed) > 0) && s.cfg.OnOutboxChanged != nil {
		s.cfg.OnOutboxChanged(added, removed, false)
	}
}

// restored tells the hooks that everything may have changed (replication's OnRestore).
func (s *State) restored() {
	s.restoreCache.invalidate()
	s.feedNew.Notify()
	if s.cfg.OnSitesChanged != nil {
		s.cfg.OnSitesChanged()
	}
	if s.cfg.OnOutboxChanged != nil {
		s.cfg.OnOutboxChanged(nil, nil, true)
	}
}

// propose applies a command once (see replication.Store.Propose) and turns a refusal into an
// error.
func (s *State) propose(ctx context.Context, t replication.CommandType, payload any) (*Answer, error) {
	return s.send(ctx, t, payload, s.b.Propose)
}

// proposeIdempotent applies a command that is safe to repeat, retrying while there is no leader.
func (s *State) proposeIdempotent(ctx context.Context, t replication.CommandType, payload any) (*Answer, error) {
	return s.send(ctx, t, payload, s.b.ProposeIdempotent)
}

func (s *State) send(ctx context.Context, t replication.CommandType, payload any, via func(context.Context, []byte) (any, error)) (*Answer, error) {
	body, err := json.Marshal(payload)
	if err != nil {
		return nil, err
	}
	return s.sendBytes(ctx, t, body, via)
}

// sendBytes proposes a command whose payload is already encoded.
func (s *State) sendBytes(ctx context.Context, t replication.CommandType, body []byte, via func(context.Context, []byte) (any, error)) (*Answer, error) {
	raw, err := via(ctx, replication.NewCommand(t, body))
	if err != nil {
		return nil, err
	}
	a, ok := raw.(*Answer)
	if !ok || a == nil {
		return nil, fmt.Errorf("sitestate: no answer from the state machine (%T)", raw)
	}
	if a.Err != nil {
		return nil, a.Err
	}
	return a, nil
}

// proposeInParts proposes items as one command made by build, split in halves while the state
// machine finds a part too large for one command; each, if set, receives every part's answer in
// order. The command must be safe to repeat.
func proposeInParts[T any](ctx context.Context, s *State, t replication.CommandType, items []T, build func([]T) any, each func(*Answer)) error {
	if len(items) == 0 {
		return nil
	}
	a, err := s.proposeIdempotent(ctx, t, build(items))
	var re *Error
	if errors.As(err, &re) && re.Code == CodeTooLarge && len(items) > 1 {
		half := len(items) / 2
		if err := proposeInParts(ctx, s, t, items[:half], build, each); err != nil {
			return err
		}
		return proposeInParts(ctx, s, t, items[half:], build, each)
	}
	if err != nil {
		return err
	}
	if each != nil {
		each(a)
	}
	return nil
}

// view runs fn on one consistent read view of this node's copy.
func (s *State) view(fn func(txn *badger.Txn) error) error { return s.b.View(fn) }

// get reads one key's JSON from this node's copy; ErrNotFound when it is absent.
func getOne[T any](s *State, key []byte) (*T, error) {
	v := new(T)
	var ok bool
	err := s.view(func(txn *badger.Txn) error {
		var err error
		ok, err = getJSON(view{txn}, key, v)
		return err
	})
	if err == nil && !ok {
		return nil, ErrNotFound
	}
	return v, err
}

// ExportState returns every key and value of this node's state (tests and diagnostics).
func (s *State) ExportState() (map[string][]byte, error) { return s.b.ExportState() }

// Fresh reports whether this site holds no case and has handed none on: a backup may be
// restored into it without throwing away anything only it knows. Its mirror does not count: a
// fresh site mirrors its children within seconds, and the restore asks them again.
func (s *State) Fresh() (bool, error) {
	fresh := true
	err := s.view(func(txn *badger.Txn) error {
		for _, prefix := range [][]byte{prefixCase, prefixStub} {
			opts := badger.DefaultIteratorOptions
			opts.Prefix, opts.PrefetchValues = prefix, false
			it := txn.NewIterator(opts)
			it.Rewind()
			if it.Valid() {
				fresh = false
			}
			it.Close()
		}
		return nil
	})
	return fresh, err
}
