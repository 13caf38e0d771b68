package replication

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Per-command write limits. A command that would write more is refused (deterministically: the
// counts depend only on the command and the state), so no entry of the log can be too big to
// apply; proposers keep their commands well below. Each write counts its key, its value and two
// bytes, whatever badger would keep inline. The state database's own transaction limits are
// checked at open to exceed these with room for the applied index.
const (
	MaxCommandWrites = 8192
	MaxCommandBytes  = 1 << 20
	// MaxKeyBytes bounds one key (badger refuses keys over 65,000 bytes, and empty ones).
	MaxKeyBytes = 4096
)

// Tx is one command's access to the state while it is applied. Reads see the state as the
// commands before it in the log left it, plus this command's own writes. Writes are kept aside
// and reach the state only when the applier returns an answer that is not a refusal, so a
// refused command (or one that panicked) changes nothing on any replica.
//
// A Tx is valid only during its Applier call, on the FSM goroutine. Keys and values passed to
// Set are kept: do not change them afterwards.
type Tx struct {
	txn     *badger.Txn // the batch's transaction: holds the writes of the commands before
	at      time.Time
	index   uint64
	writes  map[string]write
	effects []any
	// badKey is set by a write the state cannot take (an empty key, or one over MaxKeyBytes):
	// the command is refused.
	badKey string
}

type write struct {
	value   []byte
	deleted bool
}

// At is the command's time, stamped by the leader that proposed it (UTC). An applier takes its
// time from here, never from a clock, so every replica computes the same state.
func (tx *Tx) At() time.Time { return tx.at }

// Index is the command's Raft log index.
func (tx *Tx) Index() uint64 { return tx.index }

// Get returns a copy of the value at key and whether the key exists.
func (tx *Tx) Get(key []byte) ([]byte, bool, error) {
	if w, ok := tx.writes[string(key)]; ok {
		if w.deleted {
			return nil, false, nil
		}
		return w.value, true, nil
	}
	item, err := tx.txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	v, err := item.ValueCopy(nil)
	return v, err == nil, err
}

// Has reports whether key exists.
func (tx *Tx) Has(key []byte) (bool, error) {
	if w, ok := tx.writes[string(key)]; ok {
		return !w.deleted, nil
	}
	_, err := tx.txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Set writes value at key (an empty value is a value).
func (tx *Tx) Set(key, value []byte) {
	if !tx.checkKey(key) {
		return
	}
	if value == nil {
		value = []byte{}
	}
	tx.writes[string(key)] = write{value: value}
}

// Delete removes key.
func (tx *Tx) Delete(key []byte) {
	if !tx.checkKey(key) {
		return
	}
	tx.writes[string(key)] = write{deleted: true}
}

func (tx *Tx) checkKey(key []byte) bool {
	if len(key) == 0 || len(key) > MaxKeyBytes {
		if tx.badKey == "" {
			tx.badKey = fmt.Sprintf("a key of %d bytes (keys are 1 to %d bytes)", len(key), MaxKeyBytes)
		}
		return false
	}
	return true
}

// Emit records an effect of the command for the state machine's OnCommit hook, which receives
// it only once the command's writes are committed (and never for a refused command).
func (tx *Tx) Emit(effect any) { tx.effects = append(tx.effects, effect) }

// Scan calls fn for every key under prefix, in key order, with its value, until fn returns
// false or an error. The key and value are valid only during the call. Scans cannot nest: a
// badger update transaction has one iterator at a time.
func (tx *Tx) Scan(prefix []byte, fn func(key, value []byte) (bool, error)) error {
	return tx.scan(prefix, true, fn)
}

// ScanKeys is Scan without reading values (value is nil).
func (tx *Tx) ScanKeys(prefix []byte, fn func(key []byte) (bool, error)) error {
	return tx.scan(prefix, false, func(k, _ []byte) (bool, error) { return fn(k) })
}

func (tx *Tx) scan(prefix []byte, values bool, fn func(key, value []byte) (bool, error)) error {
	var pending []string
	for k := range tx.writes {
		if strings.HasPrefix(k, string(prefix)) {
			pending = append(pending, k)
		}
	}
	slices.Sort(pending)
	opts := badger.DefaultIteratorOptions
	opts.Prefix = prefix
	opts.PrefetchValues = values
	it := tx.txn.NewIterator(opts)
	defer it.Close()
	it.Rewind()
	for it.Valid() || len(pending) > 0 {
		fromState := it.Valid()
		if fromState && len(pending) > 0 {
			switch c := bytes.Compare(it.Item().Key(), []byte(pending[0])); {
			case c > 0:
				fromState = false
			case c == 0:
				it.Next() // this command's write replaces the stored value
				fromState = false
			}
		}
		var more bool
		var err error
		if fromState {
			// The item's key and value are valid until Next: call fn first.
			var value []byte
			if values {
				if value, err = it.Item().ValueCopy(nil); err != nil {
					return err
				}
			}
			more, err = fn(it.Item().Key(), value)
			it.Next()
		} else {
			k := pending[0]
			pending = pending[1:]
			w := tx.writes[k]
			if w.deleted {
				continue
			}
			more, err = fn([]byte(k), w.value)
		}
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// cost is what the command's writes count against the per-command limits.
func (tx *Tx) cost() (writes, bytes int) {
	for k, w := range tx.writes {
		bytes += len(k) + len(w.value) + 2
	}
	return len(tx.writes), bytes
}
