// Package logpb holds the protobuf messages of a site's Raft log payloads, generated from
// log.proto. They are the log's format, not an API: only package sitestate uses them.
package logpb

//go:generate protoc --proto_path=. --go_out=. --go_opt=paths=source_relative log.proto
