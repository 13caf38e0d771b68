package benchkit

import (
	"testing"

	"github.com/govgrid/govgrid/tier"
)

func TestTownshipSites(t *testing.T) {
	sites := TownshipSites("cd-dgdj-a", "cd-dgdj-b")
	if len(sites) != 4 || sites[0].Code != DistrictSite || sites[0].Nodes != DistrictNodes || sites[1].Parent != DistrictSite ||
		sites[2].Parent != TownshipSite || sites[3].Code != "cd-dgdj-b" || sites[3].Tier != tier.Community || sites[3].Nodes != 1 {
		t.Fatalf("sites %+v", sites)
	}
}
