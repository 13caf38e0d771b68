// Package raftbadger implements hashicorp/raft's LogStore and StableStore on badger v4.
//
// A [Store] keeps the Raft log and Raft's stable state (current term, last
// vote, ...) in a single badger database opened with SyncWrites enabled, so
// every successful StoreLog, StoreLogs, DeleteRange, Set and SetUint64 call is
// durable on disk before it returns, as Raft's safety argument requires.
//
// # Key layout
//
// The two stores share one badger key space and are separated by a one-byte
// prefix:
//
//	'l' (0x6c) | index (8 bytes, big-endian uint64)   -> encoded raft.Log
//	's' (0x73) | key bytes (as given by raft)         -> value bytes
//
// Big-endian indexes make badger's lexicographic key order equal to log
// order, so the first and last log entries are found with a single forward
// or reverse seek within the 'l' prefix. Values written with SetUint64 are
// stored as 8-byte big-endian integers, like raft-boltdb does.
//
// # Log encoding
//
// Log entries use a compact, hand-written binary format (see encodeLog):
//
//	version  byte     currently 1
//	flags    byte     bit 0: AppendedAt is present (non-zero time)
//	Index    uvarint
//	Term     uvarint
//	Type     byte
//	len      uvarint, followed by Data
//	len      uvarint, followed by Extensions
//	AppendedAt varint Unix nanoseconds, only if flag bit 0 is set
//
// AppendedAt is kept with nanosecond precision; its monotonic clock reading
// and location are dropped and it decodes in the local time zone (compare
// with time.Time.Equal). Empty Data and Extensions decode as nil.
//
// # Usage
//
// Wrap the store in raft.NewLogCache for production use, pass the same
// *Store as both LogStore and StableStore, and call [Store.RunGC]
// periodically (for example every few minutes) to reclaim value-log space.
package raftbadger
