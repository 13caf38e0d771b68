package node

import (
	"encoding/json"
	"fmt"

	"github.com/govgrid/govgrid/api"
)

// Meta is what a node tells the grid about itself through gossip: the wire type of
// GET /v1/members' "meta" (api.GossipMeta, where its fields are described). Its keys are short
// because memberlist refuses (panics on) metadata over 512 bytes.
type Meta api.GossipMeta

// MetaMaxSize is memberlist's limit on node metadata; MaxVersion bounds the version string so
// that the largest allowed values still fit (TestMetaAtItsSizeLimit).
const (
	MetaMaxSize = 512
	MaxVersion  = 64
)

// Encode returns m as gossip metadata, or an error if it would exceed MetaMaxSize.
func (m Meta) Encode() ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	if len(b) > MetaMaxSize {
		return nil, fmt.Errorf("node metadata is %d bytes, over memberlist's %d-byte limit: shorten the addresses or names", len(b), MetaMaxSize)
	}
	return b, nil
}

// DecodeMeta parses gossip metadata.
func DecodeMeta(b []byte) (Meta, error) {
	var m Meta
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("undecodable node metadata: %w", err)
	}
	if m.Site == "" || m.GRPC == "" || m.Raft == "" {
		return m, fmt.Errorf("node metadata without site or addresses")
	}
	return m, nil
}
