// Package sample holds the sample catalogue `govgrid demo` loads: the seventeen departments of
// the district centre the grid is modelled on and 89 of their items, zh-CN with English names,
// with every processing mode and items decided at each tier.
package sample

import (
	"bytes"
	_ "embed"

	"github.com/govgrid/govgrid/catalog"
)

//go:embed catalog.json
var data []byte

// JSON is the sample catalogue as a catalogue file.
func JSON() []byte { return bytes.Clone(data) }

// File is the sample catalogue, read and validated.
func File() (*catalog.File, error) {
	return catalog.Read(bytes.NewReader(data), catalog.FormatJSON, nil)
}
