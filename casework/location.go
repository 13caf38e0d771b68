package casework

import (
	"sync"
	"time"
)

// GridLocation is the default time zone of a grid, Asia/Shanghai: case numbers take their day
// there, and listings read dates there. It falls back to a fixed UTC+8 (China has no daylight
// saving) where the zone database is missing; the binary embeds it (time/tzdata).
func GridLocation() *time.Location { return gridLocation() }

var gridLocation = sync.OnceValue(func() *time.Location {
	if loc, err := time.LoadLocation("Asia/Shanghai"); err == nil {
		return loc
	}
	return time.FixedZone("CST", 8*3600)
})
