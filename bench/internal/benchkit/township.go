package benchkit

import (
	"errors"

	"github.com/govgrid/govgrid/testgrid"
	"github.com/govgrid/govgrid/tier"
)

// The township grid of handoffbench and convergebench: a district of DistrictNodes nodes, one
// 1-node township under it, and 1-node communities under the township (TownshipSites).
const (
	DistrictSite  = "cd"
	TownshipSite  = "cd-dgdj"
	DistrictNodes = 3
)

// TownshipSites is the township grid with the given communities, for testgrid.New.
func TownshipSites(communities ...string) []testgrid.Site {
	sites := []testgrid.Site{
		{Code: DistrictSite, Tier: tier.District, Nodes: DistrictNodes},
		{Code: TownshipSite, Tier: tier.Township, Parent: DistrictSite, Nodes: 1},
	}
	for _, c := range communities {
		sites = append(sites, testgrid.Site{Code: c, Tier: tier.Community, Parent: TownshipSite, Nodes: 1})
	}
	return sites
}

// TownshipListed checks that a running township grid knows its sites: the township's committed
// registry lists every community, and the district leader's lists the township and every
// community, each with a leader.
func TownshipListed(g *testgrid.Grid, communities ...string) error {
	below := map[string]bool{}
	for _, c := range communities {
		below[c] = true
	}
	if err := Listed(g.SiteNodes(TownshipSite)[0], below); err != nil {
		return err
	}
	district := g.Leader(DistrictSite)
	if district == nil {
		return errors.New("the district has no leader")
	}
	below[TownshipSite] = true
	return Listed(district, below)
}
