// Package tier names the three tiers of a district's grid and the rules of its site tree: which
// tier a site's parent must have and what a site code may look like.
package tier

import (
	"fmt"
	"strings"
)

// Tier is the level of a site in the grid.
type Tier string

// The tiers, from the top of the tree down.
const (
	District  Tier = "district"  // 区政务服务中心
	Township  Tier = "township"  // 街道办事处 / 乡镇
	Community Tier = "community" // 社区 / 村便民服务站
)

// Parse turns a name into a Tier, or explains why it is not one.
func Parse(s string) (Tier, error) {
	switch t := Tier(strings.ToLower(strings.TrimSpace(s))); t {
	case District, Township, Community:
		return t, nil
	}
	return "", fmt.Errorf("unknown tier %q: want district, township or community", s)
}

// Level is the depth of the tier in the tree: district 0, township 1, community 2.
func (t Tier) Level() int {
	switch t {
	case District:
		return 0
	case Township:
		return 1
	case Community:
		return 2
	}
	return -1
}

// ParentTier is the tier a site of tier t must hang under; the district has none.
func (t Tier) ParentTier() (Tier, bool) {
	switch t {
	case Township:
		return District, true
	case Community:
		return Township, true
	}
	return "", false
}

// Label is the tier's name in Chinese, for the console and the CLI.
func (t Tier) Label() string {
	switch t {
	case District:
		return "区政务服务中心"
	case Township:
		return "街道/乡镇"
	case Community:
		return "社区/村便民服务站"
	}
	return string(t)
}

// MaxSiteCode is the longest site code allowed; codes appear in every case number.
const MaxSiteCode = 32

// ValidateSiteCode checks that code is 1–32 lowercase letters, digits and inner hyphens, so that
// it is safe in case numbers, URLs, file names and gossip metadata.
func ValidateSiteCode(code string) error {
	if code == "" || len(code) > MaxSiteCode {
		return fmt.Errorf("site code %q must be 1 to %d characters", code, MaxSiteCode)
	}
	for i, r := range code {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' && i > 0 && i < len(code)-1
		if !ok {
			return fmt.Errorf("site code %q may hold only lowercase letters, digits and inner hyphens", code)
		}
	}
	return nil
}

// ValidatePlacement checks a site's place in the tree: the district has no parent; a township's
// parent is the district; a community's parent is a township. parentTier is empty when the
// parent's tier is not known yet (it is checked again once the parent is seen).
func ValidatePlacement(t Tier, parent string, parentTier Tier) error {
	want, needs := t.ParentTier()
	switch {
	case !needs && parent != "":
		return fmt.Errorf("the district is the root of the grid: it takes no parent (got %q)", parent)
	case needs && parent == "":
		return fmt.Errorf("a %s site must name its parent %s site (--parent)", t, want)
	case needs && parentTier != "" && parentTier != want:
		return fmt.Errorf("a %s site's parent must be a %s site, but %q is a %s", t, want, parent, parentTier)
	}
	if parent != "" {
		return ValidateSiteCode(parent)
	}
	return nil
}

// ParentTierName names the tier a site of tier t must hang under, or "none" for the district.
func (t Tier) ParentTierName() string {
	if p, ok := t.ParentTier(); ok {
		return string(p)
	}
	return "none"
}
