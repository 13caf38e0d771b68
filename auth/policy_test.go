package auth

import (
	"context"
	"os"
	"strings"
	"testing"
)

// TestPolicyPinsTheSeedsDivisionOfWork: the few facts of the role matrix the rest of the grid
// relies on, stated literally (the matrix itself is Policy).
func TestPolicyPinsTheSeedsDivisionOfWork(t *testing.T) {
	for _, c := range []struct {
		role   Role
		action Action
		want   bool
	}{
		{RoleClerk, ActSubmit, true},
		{RoleGridWorker, ActSubmit, true},
		{RoleReviewer, ActSubmit, false},
		{RoleAdmin, ActReadCase, false}, // 三员分立: the administrator reads no cases
		{RoleAdmin, ActListCases, false},
		{RoleSupervisor, ActReadCase, true},
		{RoleSupervisor, ActReadAudit, true},
		{RoleClerk, ActReadAudit, false},
		{RoleClerk, ActHandDown, false}, // only an officer hands a case down
		{RoleOfficer, ActHandDown, true},
		{RoleOfficer, ActAdminister, false},
		{RoleAdmin, ActAdminister, true},
		{RoleApprover, ActReadConfig, true},
	} {
		if got := Permits([]Role{c.role}, c.action); got != c.want {
			t.Errorf("%s may %s: %v, want %v", c.role, c.action, got, c.want)
		}
	}
	for _, a := range Actions {
		if len(Policy[a]) == 0 {
			t.Errorf("no role may %s", a)
		}
	}
	if len(Actions) != len(Policy) {
		t.Errorf("Actions lists %d actions, Policy has %d", len(Actions), len(Policy))
	}
}

func TestClaimsMayAndMasking(t *testing.T) {
	c := &Claims{User: "li.jd", Roles: []Role{RoleSupervisor}}
	if err := c.May(ActSubmit); err == nil || !strings.Contains(err.Error(), "clerk, grid_worker, officer") {
		t.Errorf("a supervisor submitting: %v", err)
	}
	if c.SeesPersonalData() {
		t.Error("supervision sees personal data")
	}
	if !(&Claims{Roles: []Role{RoleReviewer}}).SeesPersonalData() {
		t.Error("a reviewer does not see personal data")
	}
	if FromContext(NewContext(context.Background(), c)) != c || FromContext(context.Background()) != nil {
		t.Error("claims do not travel in the context")
	}
	if got := (&Claims{User: "wang.fang", Name: "王芳"}).Actor(64); got != "王芳 (wang.fang)" {
		t.Errorf("actor %q", got)
	}
	if got := (&Claims{User: "wang.fang", Name: strings.Repeat("王", 60)}).Actor(64); got != "wang.fang" {
		t.Errorf("a long name's actor %q", got)
	}
}

// TestREADMEShowsTheRoleMatrix: the README's table is Policy, rendered.
func TestREADMEShowsTheRoleMatrix(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("| action |")
	for _, r := range Roles {
		b.WriteString(" " + string(r) + " |")
	}
	b.WriteString("\n|---|" + strings.Repeat("---|", len(Roles)) + "\n")
	for _, a := range Actions {
		b.WriteString("| " + string(a) + " |")
		for _, r := range Roles {
			if Permits([]Role{r}, a) {
				b.WriteString(" ✓ |")
			} else {
				b.WriteString(" |")
			}
		}
		b.WriteString("\n")
	}
	if !strings.Contains(string(readme), b.String()) {
		t.Errorf("README.md lacks the role matrix as Policy has it:\n%s", b.String())
	}
}
