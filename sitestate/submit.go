package replication

import (
	"encoding/binary"
	"encoding/json"
	"errors"

	"github.com/dgraph-io/badger/v4"
	"github.com/govgrid/govgrid/casework"
)

// maxDailySequence is the largest sequence a case number's six digits can hold.
const maxDailySequence = 999_999

// applySubmit opens a case: it allocates the day's next number, stores the case and its index
// entries, and remembers the request id so that a retry answers with the same case.
func (f *fsm) applySubmit(txn *badger.Txn, c *submitCommand) (*result, error) {
	if c.Site == "" || c.At.IsZero() {
		// Only a node of a newer or broken version proposes such a command.
		return &result{Err: errorf(CodeInvalid, "submit command without site or time")}, nil
	}
	if id := c.Submission.RequestID; id != "" {
		number, err := getString(txn, requestKey(id))
		if err == nil {
			existing, err := getCase(txn, number)
			if err != nil {
				return nil, err
			}
			return &result{Case: existing, Duplicate: true}, nil
		}
		if !errors.Is(err, badger.ErrKeyNotFound) {
			return nil, err
		}
	}
	if err := c.Submission.Validate(); err != nil {
		return &result{Err: refusal(err)}, nil
	}
	day := c.At.In(f.loc).Format("20060102")
	seq, err := getUint32(txn, sequenceKey(day))
	if err != nil && !errors.Is(err, badger.ErrKeyNotFound) {
		return nil, err
	}
	if seq >= maxDailySequence {
		return &result{Err: errorf(CodeExhausted, "site %s has used all %d case numbers of %s", c.Site, maxDailySequence, day)}, nil
	}
	seq++
	number := casework.FormatNumber(c.Site, day, seq)
	cs, err := casework.Accept(&c.Submission, casework.Acceptance{
		Number: number, Site: c.Site, At: c.At, QueryCodeHash: c.QueryCodeHash,
	})
	if err != nil {
		return &result{Err: refusal(err)}, nil
	}
	relayed, err := f.relay(txn, cs, casework.MoveEscalate, c.Site, c.RelayTo, c.At)
	if err != nil {
		return nil, err
	}
	if !relayed {
		if err := f.storeCase(txn, cs, c.Site, c.At); err != nil {
			return nil, err
		}
	}
	seqBytes := make([]byte, 4)
	binary.BigEndian.PutUint32(seqBytes, seq)
	nanos := cs.CreatedAt.UnixNano()
	for _, kv := range [][2][]byte{
		{sequenceKey(day), seqBytes},
		{byTimeKey(nanos, number), nil},
		{byStatusKey(string(cs.Status), nanos, number), nil},
	} {
		if err := txn.Set(kv[0], kv[1]); err != nil {
			return nil, err
		}
	}
	if id := c.Submission.RequestID; id != "" {
		if err := txn.Set(requestKey(id), []byte(number)); err != nil {
			return nil, err
		}
	}
	f.stats.accepted++
	return &result{Case: cs}, nil
}

func getCase(txn *badger.Txn, number string) (*casework.Case, error) {
	item, err := txn.Get(caseKey(number))
	if err != nil {
		return nil, err
	}
	c := new(casework.Case)
	err = item.Value(func(v []byte) error { return json.Unmarshal(v, c) })
	return c, err
}

func getString(txn *badger.Txn, key []byte) (string, error) {
	item, err := txn.Get(key)
	if err != nil {
		return "", err
	}
	v, err := item.ValueCopy(nil)
	return string(v), err
}

func getUint32(txn *badger.Txn, key []byte) (uint32, error) {
	item, err := txn.Get(key)
	if err != nil {
		return 0, err
	}
	var n uint32
	err = item.Value(func(v []byte) error {
		if len(v) != 4 {
			return errors.New("replication: malformed counter")
		}
		n = binary.BigEndian.Uint32(v)
		return nil
	})
	return n, err
}
