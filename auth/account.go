// Package auth is who may use the grid (pure: no I/O, no clock; the caller passes times and
// random bytes): staff accounts and their roles, passwords hashed with argon2id, and the tokens a
// site signs when someone signs in there, verified offline with the site's public key.
//
// The grid keeps accounts as configuration documents (node/auth.go), so an account reaches every
// site beneath the one that owns it (the district, or a township for its subtree) and anyone can
// sign in at their own site while its uplink is cut.
package auth

import (
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Role is what an account may do.
type Role string

// The roles.
const (
	RoleClerk      Role = "clerk"       // 窗口受理人员: accepts applications and grievances
	RoleGridWorker Role = "grid_worker" // 网格员: takes cases in the community
	RoleOfficer    Role = "officer"     // 承办人: processes cases, moves them between sites
	RoleReviewer   Role = "reviewer"    // 审核人
	RoleApprover   Role = "approver"    // 核准人
	RoleSupervisor Role = "supervisor"  // 电子监察
	RoleAdmin      Role = "admin"       // 管理员: accounts, catalogue, configuration
)

// Roles lists every role, in display order.
var Roles = []Role{RoleClerk, RoleGridWorker, RoleOfficer, RoleReviewer, RoleApprover, RoleSupervisor, RoleAdmin}

// Label is the role's name in Chinese.
func (r Role) Label() string {
	switch r {
	case RoleClerk:
		return "窗口受理"
	case RoleGridWorker:
		return "网格员"
	case RoleOfficer:
		return "承办人"
	case RoleReviewer:
		return "审核人"
	case RoleApprover:
		return "核准人"
	case RoleSupervisor:
		return "电子监察"
	case RoleAdmin:
		return "管理员"
	}
	return string(r)
}

// Account is one member of staff.
type Account struct {
	// User is the sign-in name: 2 to 32 of a-z 0-9 . _ -, unique in the grid.
	User  string `json:"user"`
	Name  string `json:"name"`
	Site  string `json:"site"`
	Roles []Role `json:"roles"`
	// PasswordHash is the argon2id hash of the password (HashPassword); never shown.
	PasswordHash string `json:"password_hash,omitempty"`
	Disabled     bool   `json:"disabled,omitempty"`
	// TokensAfter revokes every token issued before it (a password change, a disabled account).
	TokensAfter time.Time `json:"tokens_after,omitzero"`
}

// Public is a without its password hash.
func (a Account) Public() Account {
	a.PasswordHash = ""
	return a
}

// Has says whether a has role r.
func (a *Account) Has(r Role) bool { return slices.Contains(a.Roles, r) }

// ValidateUser checks a sign-in name.
func ValidateUser(u string) error {
	if len(u) < 2 || len(u) > 32 {
		return fmt.Errorf("2 to 32 characters")
	}
	for _, r := range u {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("%q: only a-z, 0-9, '.', '_' and '-'", u)
		}
	}
	return nil
}

// MinPassword is the shortest password taken.
const MinPassword = 10

// ValidatePassword checks a new password: at least MinPassword characters, not all digits, at
// most 128 bytes.
func ValidatePassword(pw string) error {
	switch {
	case utf8.RuneCountInString(pw) < MinPassword:
		return fmt.Errorf("at least %d characters", MinPassword)
	case len(pw) > 128:
		return fmt.Errorf("at most 128 bytes")
	case strings.Trim(pw, "0123456789") == "":
		return fmt.Errorf("not digits only")
	}
	return nil
}

// Problem is one thing wrong with an account.
type Problem struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

// Validate checks an account (its hash is the caller's business) and returns every problem.
func (a *Account) Validate() []Problem {
	var p []Problem
	if err := ValidateUser(a.User); err != nil {
		p = append(p, Problem{"user", err.Error()})
	}
	if strings.TrimSpace(a.Name) == "" || utf8.RuneCountInString(a.Name) > 50 {
		p = append(p, Problem{"name", "1 to 50 characters"})
	}
	if a.Site == "" {
		p = append(p, Problem{"site", "required"})
	}
	if len(a.Roles) == 0 {
		p = append(p, Problem{"roles", "at least one of clerk, grid_worker, officer, reviewer, approver, supervisor, admin"})
	}
	for i, r := range a.Roles {
		switch {
		case !slices.Contains(Roles, r):
			p = append(p, Problem{fmt.Sprintf("roles[%d]", i), fmt.Sprintf("%q: want clerk, grid_worker, officer, reviewer, approver, supervisor or admin", r)})
		case slices.Index(a.Roles, r) < i:
			p = append(p, Problem{fmt.Sprintf("roles[%d]", i), fmt.Sprintf("%s is named twice", r)})
		}
	}
	return p
}

// argon2id parameters: OWASP's first recommendation (19 MiB, two passes, one lane). A village
// PC hashes a password in about 50 ms.
const (
	argonMemory  = 19 * 1024
	argonTime    = 2
	argonThreads = 1
	argonKeyLen  = 32
	// SaltLen is the length of the random salt HashPassword takes.
	SaltLen = 16
)

var b64 = base64.RawStdEncoding

// HashPassword hashes pw with argon2id and salt (SaltLen random bytes) into the PHC string form:
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>.
func HashPassword(pw string, salt []byte) string {
	key := argon2.IDKey([]byte(pw), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// CheckPassword says whether pw is the password hashed into hash (with the parameters the hash
// names, so that stronger ones can come later).
func CheckPassword(hash, pw string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return false
	}
	var m uint32
	var t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m == 0 || m > 1<<20 || t == 0 || t > 16 || p == 0 {
		return false
	}
	salt, err1 := b64.DecodeString(parts[4])
	want, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}
