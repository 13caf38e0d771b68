package tier

import "testing"

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Tier
		ok   bool
	}{
		{"district", District, true},
		{" Township ", Township, true},
		{"community", Community, true},
		{"province", "", false},
		{"", "", false},
	} {
		got, err := Parse(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("Parse(%q) = %q, %v; want %q, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestValidatePlacement(t *testing.T) {
	for _, tc := range []struct {
		tier       Tier
		parent     string
		parentTier Tier
		ok         bool
	}{
		{District, "", "", true},
		{District, "cd", "", false},
		{Township, "cd", District, true},
		{Township, "cd", "", true},
		{Township, "", "", false},
		{Township, "cd-dgdj", Township, false},
		{Community, "cd-dgdj", Township, true},
		{Community, "cd", District, false},
		{Community, "", "", false},
		{Community, "Bad Code", "", false},
	} {
		err := ValidatePlacement(tc.tier, tc.parent, tc.parentTier)
		if (err == nil) != tc.ok {
			t.Errorf("ValidatePlacement(%s, %q, %q) = %v; want ok=%v", tc.tier, tc.parent, tc.parentTier, err, tc.ok)
		}
	}
}

func TestValidateSiteCode(t *testing.T) {
	for code, ok := range map[string]bool{
		"cd": true, "cd-dgdj": true, "cd-dgdj-01": true, "a": true,
		"": false, "-cd": false, "cd-": false, "CD": false, "城东": false, "cd_x": false,
		"abcdefghijklmnopqrstuvwxyz0123456": false,
	} {
		if err := ValidateSiteCode(code); (err == nil) != ok {
			t.Errorf("ValidateSiteCode(%q) = %v; want ok=%v", code, err, ok)
		}
	}
}
