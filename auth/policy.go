package auth

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// Action is something a member of staff asks a node to do. What roles may do it is Policy; where
// (which sites) is the scope rule the node applies: a person acts in their own site's subtree.
type Action string

// The actions. The case moves are named by their verb, like the endpoints.
const (
	ActSubmit    Action = "submit"     // POST /v1/cases
	ActReadCase  Action = "read-case"  // GET /v1/cases/{number}: the whole record, history included
	ActListCases Action = "list-cases" // GET /v1/cases, either scope
	ActEscalate  Action = "escalate"
	ActHandDown  Action = "handdown"
	ActReturn    Action = "return"
	ActRelay     Action = "relay"
	// The steps of a case's life, each a verb under /v1/cases/{number}/.
	ActAccept   Action = "accept"            // accept, reject, request-supplement, supplement: intake (受理)
	ActProcess  Action = "process"           // process, sign-off, complete: the officer in charge (承办)
	ActReview   Action = "review"            // review (审核)
	ActApprove  Action = "approve"           // approve, deny (核准)
	ActIssue    Action = "issue-certificate" // issue-certificate, deliver (领证, 送达)
	ActWithdraw Action = "withdraw"          // withdraw, on the applicant's behalf (撤回)
	ActCharge   Action = "charge"            // charge, exempt: the bill's lines (收费, 减免)
	ActPay      Action = "pay"               // pay: the payment at the window (缴费)

	ActReadConfig Action = "read-config" // GET /v1/config
	ActAdminister Action = "administer"  // configuration, catalogue, accounts, backups, leave, retire, reinstate
	ActReadAudit  Action = "read-audit"  // GET /v1/audit
)

// Policy is the role matrix: the roles that may take each action. It follows the seed's centre:
// the window clerk and the grid worker take in and pass on cases, the officer also hands them
// down and handles them; one person reviews and another approves (一审一核: the roles differ, and
// the node refuses the reviewer as the approver of the same case); reviewers and approvers read
// what they decide; electronic supervision (电子监察) reads
// every case and the audit trail of its subtree, with personal data masked; the administrator
// keeps accounts, the catalogue and the sites, and reads no cases (三员分立: who manages the system
// does not handle its business).
var Policy = map[Action][]Role{
	ActSubmit:     {RoleClerk, RoleGridWorker, RoleOfficer},
	ActReadCase:   {RoleClerk, RoleGridWorker, RoleOfficer, RoleReviewer, RoleApprover, RoleSupervisor},
	ActListCases:  {RoleClerk, RoleGridWorker, RoleOfficer, RoleReviewer, RoleApprover, RoleSupervisor},
	ActEscalate:   {RoleClerk, RoleGridWorker, RoleOfficer},
	ActHandDown:   {RoleOfficer},
	ActReturn:     {RoleClerk, RoleGridWorker, RoleOfficer},
	ActRelay:      {RoleClerk, RoleGridWorker, RoleOfficer},
	ActAccept:     {RoleClerk, RoleGridWorker, RoleOfficer},
	ActProcess:    {RoleOfficer},
	ActReview:     {RoleReviewer},
	ActApprove:    {RoleApprover},
	ActIssue:      {RoleClerk, RoleOfficer},
	ActWithdraw:   {RoleClerk, RoleGridWorker, RoleOfficer},
	ActCharge:     {RoleOfficer},
	ActPay:        {RoleClerk, RoleOfficer},
	ActReadConfig: Roles,
	ActAdminister: {RoleAdmin},
	ActReadAudit:  {RoleAdmin, RoleSupervisor},
}

// Actions lists every action, in the order of the role matrix's table.
var Actions = []Action{ActSubmit, ActReadCase, ActListCases, ActEscalate, ActHandDown, ActReturn, ActRelay,
	ActAccept, ActProcess, ActReview, ActApprove, ActCharge, ActPay, ActIssue, ActWithdraw, ActReadConfig,
	ActAdminister, ActReadAudit}

// personalDataRoles are the roles whose work needs an applicant's full ID number and phone: who
// takes a case in, handles it or decides it. Everyone else who may read a case sees them masked.
var personalDataRoles = []Role{RoleClerk, RoleGridWorker, RoleOfficer, RoleReviewer, RoleApprover}

// Permits says whether someone with roles may take action a.
func Permits(roles []Role, a Action) bool {
	for _, r := range Policy[a] {
		if slices.Contains(roles, r) {
			return true
		}
	}
	return false
}

// May says whether the bearer of c may take action a (nil), or why not: the roles that may.
func (c *Claims) May(a Action) error {
	if Permits(c.Roles, a) {
		return nil
	}
	need := make([]string, len(Policy[a]))
	for i, r := range Policy[a] {
		need[i] = string(r)
	}
	return fmt.Errorf("%s needs one of the roles %s; %s has %v", a, strings.Join(need, ", "), c.User, c.Roles)
}

// SeesPersonalData says whether the bearer of c reads applicants' ID numbers and phones in full.
func (c *Claims) SeesPersonalData() bool {
	for _, r := range personalDataRoles {
		if c.Has(r) {
			return true
		}
	}
	return false
}

type claimsKey struct{}

// NewContext returns ctx carrying the claims of the signed-in caller.
func NewContext(ctx context.Context, c *Claims) context.Context {
	return context.WithValue(ctx, claimsKey{}, c)
}

// FromContext returns the signed-in caller's claims, or nil.
func FromContext(ctx context.Context) *Claims {
	c, _ := ctx.Value(claimsKey{}).(*Claims)
	return c
}

// Actor is how an event names the bearer of c: "王芳 (wang.fang)", or the user alone when that
// would be longer than max characters.
func (c *Claims) Actor(max int) string {
	if a := c.Name + " (" + c.User + ")"; len([]rune(a)) <= max {
		return a
	}
	return c.User
}

// StepAction is the action a step of a case's life needs (casework.Step's names).
func StepAction(step string) (Action, bool) {
	a, ok := stepActions[step]
	return a, ok
}

var stepActions = map[string]Action{
	"accept": ActAccept, "reject": ActAccept, "request-supplement": ActAccept, "supplement": ActAccept,
	"process": ActProcess, "sign-off": ActProcess, "complete": ActProcess,
	"review": ActReview, "approve": ActApprove, "deny": ActApprove,
	"issue-certificate": ActIssue, "deliver": ActIssue, "withdraw": ActWithdraw,
	"charge": ActCharge, "exempt": ActCharge, "pay": ActPay,
}

// RoleFor is the role the bearer of c takes action a in: the first of c's roles that may.
func (c *Claims) RoleFor(a Action) Role {
	for _, r := range c.Roles {
		if slices.Contains(Policy[a], r) {
			return r
		}
	}
	return ""
}
