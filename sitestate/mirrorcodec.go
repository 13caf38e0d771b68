package sitestate

import (
	"encoding/json"
	"fmt"

	"github.com/dgraph-io/badger/v4"
	"github.com/klauspost/compress/s2"
)

// How a mirror record is stored. The district keeps a copy of every case in the district, and
// each township of its subtree's: records are most of their disk. A record that carries its
// case is stored as one format byte and the record's JSON compressed with s2 (its fast encoder:
// the better one copies larger tables per record and takes five times as long) against a fixed
// dictionary (a typical record: the field names, statuses, event types and the common words of
// a case, which one record alone is too short to repeat). That stores a case in about half its
// JSON (TestMirrorRecordCompresses) and decodes it in about a microsecond. A reference to a
// held case (a few dozen bytes) and every record written before the format existed stay plain
// JSON, told apart by their first byte, '{'.

// mirrorFormatS2Dict1 marks a record compressed with s2 against mirrorDict1.
const mirrorFormatS2Dict1 = 0x01

// mirrorDict1Text is dictionary 1. Stored records depend on it byte for byte: never change it.
// A better dictionary is dictionary 2, with a format byte of its own; decoding keeps both.
const mirrorDict1Text = `{"case":{"number":"c01-20260101-000001","kind":"application","item_code":"MZ-001","title":"申请","description":"申请人申请办理，材料已现场核验。","applicant":{"name":"张","id_number":"110101199001011234","phone":"13800000000"},"materials":[{"name":"居民身份证","digest":"","pages":1},{"name":"户口簿","pages":1},{"name":"收入证明","pages":1},{"name":"申请表","pages":2}],"status":"submitted","holder_site":"","origin_site":"","decide_tier":"district","transit":{"handoff_id":"","to_site":"","move":"escalate","since":""},"version":1,"query_code_hash":"","request_id":"","created_at":"2026-01-01T00:00:00.000000000Z","updated_at":"2026-01-01T00:00:00.000000000Z","history":[{"seq":1,"type":"submitted","at":"2026-01-01T00:00:00.000000000Z","site":"","actor":"窗口 1","to_status":"submitted","hash":""},{"seq":2,"type":"escalated","at":"","site":"","actor":"","note":"","from_status":"submitted","to_status":"submitted","from_site":"","to_site":"","prev_hash":"","hash":""},{"seq":3,"type":"received","type":"relayed","type":"handed_down","type":"returned","type":"handoff_refused"}]},"origin":"","at":"2026-01-01T00:00:00.000000000Z","mirrored_at":"2026-01-01T00:00:00.000000000Z","via":"","qc":""}` +
	`grievance 诉求 投诉 咨询 建议 求助 反映 民政 人力资源和社会保障 教育 卫生 建设 城管 司法 残疾 低保 救助 补贴 养老 医疗 就业 登记 证明 办理 审核 复印件 原件 营业执照 房产证明 结婚证 出生医学证明 社区 街道 村 镇 区 有限公司`

var mirrorDict1 = s2.MakeDict([]byte(mirrorDict1Text), []byte(`{"case":`))

// encodeStoredMirror is the stored form of rec. The case's bytes are spliced into the record's
// JSON as they are: they were encoded here (compact and valid), and encoding/json would scan
// and copy them again, which costs more than compressing them.
func encodeStoredMirror(rec *storedMirror) ([]byte, error) {
	c := rec.Case
	meta := *rec
	meta.Case = nil
	b, err := json.Marshal(&meta)
	if err != nil || len(c) == 0 {
		return b, err
	}
	j := make([]byte, 0, len(`{"case":,`)+len(c)+len(b))
	j = append(append(append(j, `{"case":`...), c...), ',')
	j = append(j, b[1:]...)
	buf := make([]byte, 1+s2.MaxEncodedLen(len(j)))
	buf[0] = mirrorFormatS2Dict1
	enc := mirrorDict1.Encode(buf[1:], j)
	if &enc[0] != &buf[1] { // s2 found MaxEncodedLen too small: it never does
		return append([]byte{mirrorFormatS2Dict1}, enc...), nil
	}
	return buf[:1+len(enc)], nil
}

// decodeStoredMirror reads a stored mirror record into rec, whichever format it was stored in.
func decodeStoredMirror(b []byte, rec *storedMirror) error {
	if len(b) > 0 && b[0] == mirrorFormatS2Dict1 {
		j, err := mirrorDict1.Decode(nil, b[1:])
		if err != nil {
			return fmt.Errorf("mirror record (s2, dictionary 1): %w", err)
		}
		b = j
	}
	return json.Unmarshal(b, rec)
}

// getStoredMirror reads the mirror record of case number as stored (a held case unresolved).
func getStoredMirror(r reader, number string) (*storedMirror, bool, error) {
	b, ok, err := r.Get(mirrorKey(number))
	if err != nil || !ok {
		return nil, false, err
	}
	rec := new(storedMirror)
	if err := decodeStoredMirror(b, rec); err != nil {
		return nil, false, fmt.Errorf("%w: %s: %v", errMalformed, number, err)
	}
	return rec, true, nil
}

// putStoredMirror stores rec as the mirror record of case number.
func putStoredMirror(tx txWriter, number string, rec *storedMirror) error {
	b, err := encodeStoredMirror(rec)
	if err != nil {
		return err
	}
	tx.Set(mirrorKey(number), b)
	return nil
}

// scanMirror visits every mirror record as stored, in case-number order, while visit returns
// true.
func scanMirror(txn *badger.Txn, visit func(*storedMirror) bool) error {
	return scan(txn, prefixMirror, decodeStoredMirror, visit)
}

// txWriter is the part of a transaction putStoredMirror needs.
type txWriter interface{ Set(key, value []byte) }
