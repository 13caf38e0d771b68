package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/govgrid/govgrid/api"
	"github.com/spf13/cobra"
)

// moveVerb is one of the moves of a case between neighbouring sites: POST
// /v1/cases/{number}/{move}. The node answers 202 with the case, locked in transit, and
// delivers it to the target on its own (retrying for as long as the link is down).
type moveVerb struct {
	move  string // the path segment: escalate, relay, return, handdown
	zh    string // what clerks call it
	short string
	// note is the flag that carries the free text: --reason, or --instructions for hand-down.
	note, noteHelp string
	// toRequired: hand-down must name the child site; the other moves find their target.
	toRequired bool
	toHelp     string
}

var moveVerbs = []moveVerb{
	{move: "escalate", zh: "上报", short: "Escalate a case to the parent site for a decision this site cannot make (上报)",
		note: "reason", noteHelp: "why the case goes up (the opinion sent with it)",
		toHelp: "the parent site (optional: it is the only one allowed)"},
	{move: "relay", zh: "转报", short: "Relay a case received from below on to the parent site (转报)",
		note: "reason", noteHelp: "the opinion sent with the case",
		toHelp: "the parent site (optional: it is the only one allowed)"},
	{move: "return", zh: "退回", short: "Return a case to the site it came from (退回)",
		note: "reason", noteHelp: "why the case is returned",
		toHelp: "the site the case came from (optional: it is the only one allowed)"},
	{move: "handdown", zh: "下派", short: "Hand a case down to a child site with instructions (交办/下派)",
		note: "instructions", noteHelp: "what the child site is to do with the case",
		toRequired: true, toHelp: "the child site to hand the case down to (required)"},
}

// newMoveCommands returns `case escalate|relay|return|handdown`, which talk to *addr (the
// `case` group's --addr).
func newMoveCommands(addr *string) []*cobra.Command {
	var cmds []*cobra.Command
	for _, v := range moveVerbs {
		use := v.move + " NUMBER [--" + v.note + " TEXT]"
		if v.toRequired {
			use = v.move + " NUMBER --to SITE [--" + v.note + " TEXT]"
		}
		cmd := &cobra.Command{Use: use, Short: v.short, Args: cobra.ExactArgs(1)}
		to := cmd.Flags().String("to", "", v.toHelp)
		note := cmd.Flags().String(v.note, "", v.noteHelp)
		// The signed-in account is the move's actor: --actor is accepted (old scripts) and ignored.
		cmd.Flags().String("actor", "", "ignored: the signed-in account is recorded as the actor")
		_ = cmd.Flags().MarkDeprecated("actor", "the signed-in account (govgrid login, --token) is recorded as the actor")
		asJSON := cmd.Flags().Bool("json", false, "print the node's answer (the case, in transit) as JSON")
		if v.toRequired {
			_ = cmd.MarkFlagRequired("to")
		}
		cmd.RunE = func(cmd *cobra.Command, args []string) error {
			number := args[0]
			// The server refuses reason together with instructions: send the one the move takes.
			body := api.MoveRequest{ToSite: *to}
			if v.note == "instructions" {
				body.Instructions = *note
			} else {
				body.Reason = *note
			}
			var raw json.RawMessage
			err := call(*addr, "POST", "/v1/cases/"+url.PathEscape(number)+"/"+v.move, body, &raw)
			if err != nil {
				return moveError(v, number, err)
			}
			if *asJSON {
				return writeJSON(cmd.OutOrStdout(), raw)
			}
			var c api.Case
			if err := json.Unmarshal(raw, &c); err != nil {
				return fmt.Errorf("case %s %s: the node's answer is not a case: %w", v.move, number, err)
			}
			printMoved(cmd.OutOrStdout(), v, number, &c)
			return nil
		}
		cmds = append(cmds, cmd)
	}
	return cmds
}

// printMoved prints the one line a successful move shows, each part Chinese first:
//
//	已上报 escalated: cd-dgdj-ngj-20260101-000001 → cd-dgdj, 交接单 handoff H (在途待接收 in transit)
func printMoved(w io.Writer, v moveVerb, number string, c *api.Case) {
	if c.Number != "" {
		number = c.Number
	}
	if c.Transit == nil { // not expected in a 202; say what is known
		fmt.Fprintf(w, "已%s %s: %s, 持有 held by %s\n", v.zh, pastTense(v.move), number, c.HolderSite)
		return
	}
	t := c.Transit
	fmt.Fprintf(w, "已%s %s: %s → %s, 交接单 handoff %s (在途待接收 in transit)\n", v.zh, pastTense(v.move), number, t.To, t.HandoffID)
}

func pastTense(move string) string {
	switch move {
	case "escalate":
		return "escalated"
	case "relay":
		return "relayed"
	case "return":
		return "returned"
	case "handdown":
		return "handed down"
	}
	return move
}

// moveError turns a failed move into one line with the server's message and the kind of
// refusal (conflict, not_found, invalid, ...), e.g.
//
//	上报失败 / escalate cd-...-000001 failed: case ... is in transit to cd-dgdj ... (409 conflict)
func moveError(v moveVerb, number string, err error) error {
	var ae *apiError
	if !errors.As(err, &ae) {
		return fmt.Errorf("%s失败 / %s %s failed: %w", v.zh, v.move, number, err)
	}
	msg := ae.Message
	if msg == "" {
		msg = ae.StatusText
	}
	for _, f := range ae.Fields { // a message that does not already name the fields gets them
		if fe := f.Field + ": " + f.Reason; !strings.Contains(msg, fe) {
			msg += "; " + fe
		}
	}
	code := ae.Code
	if code == "" {
		code = "error"
	}
	return fmt.Errorf("%s失败 / %s %s failed: %s (%d %s)", v.zh, v.move, number, oneLine(msg), ae.Status, code)
}

// writeJSON prints v indented, as printJSON does, to w.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// newSiteCommand is `govgrid site retire|reinstate`: operations on the site of the node at
// --addr, which takes them only from its own host (loopback).
func newSiteCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "site",
		Short: "Retire or reinstate the site of the node on this host (see `sites` for the tree)",
	}
	addr := addrFlag(cmd)
	asJSON := cmd.PersistentFlags().Bool("json", false, "print the node's answer as JSON")

	retire := &cobra.Command{
		Use:   "retire --reason TEXT",
		Short: "Retire this site: it refuses incoming handoffs, telling senders the reason (停用)",
		Args:  cobra.NoArgs,
	}
	reason := retire.Flags().String("reason", "", "why the site is retired; sites sending cases here are told it (required)")
	_ = retire.MarkFlagRequired("reason")
	retire.RunE = func(cmd *cobra.Command, _ []string) error {
		return siteRetire(cmd.OutOrStdout(), *addr, true, *reason, *asJSON)
	}

	reinstate := &cobra.Command{
		Use:   "reinstate",
		Short: "Reinstate this site: it takes incoming handoffs again (恢复)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return siteRetire(cmd.OutOrStdout(), *addr, false, "", *asJSON)
		},
	}
	cmd.AddCommand(retire, reinstate, newSiteRestoreCommand())
	return cmd
}

func siteRetire(w io.Writer, addr string, retired bool, reason string, asJSON bool) error {
	path, zh, verb := "/v1/site/reinstate", "恢复", "reinstate"
	var body any
	if retired {
		path, zh, verb = "/v1/site/retire", "停用", "retire"
		body = api.RetireRequest{Reason: reason}
	}
	var raw json.RawMessage
	if err := call(addr, "POST", path, body, &raw); err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.Message != "" {
			return fmt.Errorf("%s失败 / %s failed: %s (%d %s)", zh, verb, oneLine(ae.Message), ae.Status, ae.Code)
		}
		return fmt.Errorf("%s失败 / %s failed: %w", zh, verb, err)
	}
	if asJSON {
		return writeJSON(w, raw)
	}
	var out api.RetireAnswer
	if err := json.Unmarshal(raw, &out); err != nil {
		return fmt.Errorf("%s: the node's answer is not JSON: %w", verb, err)
	}
	if out.Retired {
		fmt.Fprintf(w, "站点已停用 site retired: 拒收移交 incoming handoffs are refused (理由 reason: %s)\n", oneLine(out.Reason))
	} else {
		fmt.Fprintln(w, "站点已恢复 site reinstated: 接收移交 incoming handoffs are taken again")
	}
	return nil
}
