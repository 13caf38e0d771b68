package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"

	"github.com/govgrid/govgrid/api"
	"github.com/govgrid/govgrid/casework"
	"github.com/spf13/cobra"
)

// stepNames are the steps of a case's life in Chinese, for the CLI's one-line answers.
var stepNames = map[casework.Step]string{
	casework.StepAccept: "受理", casework.StepReject: "不予受理", casework.StepRequestSupplement: "一次性告知补正",
	casework.StepSupplement: "补正", casework.StepProcess: "承办", casework.StepReview: "审核",
	casework.StepApprove: "核准", casework.StepDeny: "不予许可", casework.StepSignOff: "会签",
	casework.StepComplete: "办结", casework.StepIssueCertificate: "领证", casework.StepDeliver: "送达",
	casework.StepWithdraw: "撤回", casework.StepCharge: "收费", casework.StepExempt: "减免", casework.StepPay: "缴费",
}

// newStepCommands returns `case accept|reject|...|withdraw NUMBER`, one per step of a case's
// life, which talk to *addr as the signed-in account.
func newStepCommands(addr *string) []*cobra.Command {
	var cmds []*cobra.Command
	for _, st := range casework.Steps {
		cmd := &cobra.Command{
			Use:   string(st) + " NUMBER",
			Short: fmt.Sprintf("%s (%s) a case held at the node's site", stepNames[st], st),
			Args:  cobra.ExactArgs(1),
		}
		var req api.StepRequest
		var materials []string
		cmd.Flags().StringVar(&req.Comment, "comment", "", "an opinion or note, kept in the case's history")
		switch st {
		case casework.StepReject, casework.StepDeny:
			cmd.Flags().StringVar(&req.Reason, "reason", "", "why (required)")
			cmd.Flags().StringVar(&req.LegalBasis, "legal-basis", "", "the legal basis (required to reject)")
		case casework.StepRequestSupplement:
			cmd.Flags().StringSliceVar(&req.Missing, "missing", nil, "every missing material, comma-separated (required: 一次性告知)")
		case casework.StepSupplement:
			cmd.Flags().StringArrayVar(&materials, "material", nil, "a material handed in, NAME or NAME:PAGES (repeat for each)")
		case casework.StepAccept:
			cmd.Flags().StringVar(&req.Exception, "exception", "", "accept with a required material missing, and why")
		case casework.StepSignOff:
			cmd.Flags().StringVar(&req.Department, "department", "", "the department that signs off (required)")
		case casework.StepCharge:
			cmd.Flags().StringVar(&req.FeeLine, "line", "", "the bill's line (default: its only line)")
			cmd.Flags().Int64Var(&req.AmountFen, "amount-fen", 0, "the charge, in fen (¥12.50 is 1250)")
			cmd.Flags().StringVar(&req.Reason, "reason", "", "why, when the charge is not the catalogue's standard")
		case casework.StepExempt:
			cmd.Flags().StringVar(&req.FeeLine, "line", "", "the bill's line (default: the whole bill)")
			cmd.Flags().StringVar(&req.Reason, "reason", "", "why (required)")
		case casework.StepPay:
			cmd.Flags().Int64Var(&req.AmountFen, "amount-fen", 0, "the whole bill, in fen")
			cmd.Flags().StringVar(&req.PaymentRef, "ref", "", "the payment's reference (required)")
		}
		asJSON := cmd.Flags().Bool("json", false, "print the node's answer (the case) as JSON")
		cmd.RunE = func(cmd *cobra.Command, args []string) error {
			for _, m := range materials {
				name, pages, _ := strings.Cut(m, ":")
				mat := casework.Material{Name: name}
				if pages != "" {
					n, err := strconv.Atoi(pages)
					if err != nil {
						return fmt.Errorf("--material %s: pages must be a number", m)
					}
					mat.Pages = n
				}
				req.Materials = append(req.Materials, mat)
			}
			var raw json.RawMessage
			if err := call(*addr, "POST", "/v1/cases/"+url.PathEscape(args[0])+"/"+string(st), req, &raw); err != nil {
				return fmt.Errorf("%s失败 / %s %s failed: %w", stepNames[st], st, args[0], err)
			}
			if *asJSON {
				return writeJSON(cmd.OutOrStdout(), raw)
			}
			var c api.Case
			if err := json.Unmarshal(raw, &c); err != nil {
				return fmt.Errorf("%s %s: the node's answer is not a case: %w", st, args[0], err)
			}
			printStepped(cmd.OutOrStdout(), st, &c)
			return nil
		}
		cmds = append(cmds, cmd)
	}
	return cmds
}

// printStepped prints the one line a step shows, Chinese first:
//
//	已受理 accept: cd-dgdj-ngj-20261203-000001, 状态 status accepted, 持有 held by cd-dgdj-ngj → cd-dgdj
func printStepped(w io.Writer, st casework.Step, c *api.Case) {
	fmt.Fprintf(w, "已%s %s: %s, 状态 status %s, 持有 held by %s", stepNames[st], st, c.Number, c.Status, c.HolderSite)
	if c.Transit != nil {
		fmt.Fprintf(w, " → %s (在途 in transit)", c.Transit.To)
	}
	fmt.Fprintln(w)
}

// newVerifyCaseCommand is `govgrid case verify NUMBER`: reads the case at the node and checks
// its history chain (each event's hash covers it and the event before).
func newVerifyCaseCommand(addr *string) *cobra.Command {
	return &cobra.Command{
		Use:   "verify NUMBER",
		Short: "Check a case's history chain where a copy is (the node at --addr)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var c api.Case
			if err := call(*addr, "GET", "/v1/cases/"+url.PathEscape(args[0]), nil, &c); err != nil {
				return err
			}
			if err := c.VerifyHistory(); err != nil {
				return fmt.Errorf("链校验失败 / the history of %s does not verify: %w", c.Number, err)
			}
			last := ""
			if n := len(c.History); n > 0 {
				last = c.History[n-1].Hash
			}
			fmt.Fprintf(cmd.OutOrStdout(), "链完整 history verified: %s, %d events, status %s, held by %s, last hash %s\n",
				c.Number, len(c.History), c.Status, c.HolderSite, last)
			return nil
		},
	}
}
