package main

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/govgrid/govgrid/api"
	"github.com/spf13/cobra"
)

// newKeyringCommand is `govgrid keyring list|install|use|remove`: the gossip keys of every alive
// node of the grid, changed on each in turn (the rotation recipe is in the README).
func newKeyringCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keyring",
		Short: "List or change the gossip encryption keys on every alive node of the grid",
		Long: "Asks the node at --addr for the grid's alive members (GET /v1/members) and lists or changes the\n" +
			"gossip keyring on each (/v1/keyring), printing one line per node. Rotation without downtime:\n" +
			"install the new key everywhere, then use it everywhere, then remove the old one.",
	}
	addr := addrFlag(cmd)
	list := &cobra.Command{Use: "list", Short: "Show each node's gossip keys (fingerprints; * marks the primary)", Args: cobra.NoArgs}
	list.RunE = func(cmd *cobra.Command, _ []string) error {
		return eachNode(cmd.OutOrStdout(), *addr, func(base string) (*api.KeyringView, error) {
			var v api.KeyringView
			err := call(base, "GET", "/v1/keyring", nil, &v)
			return &v, err
		})
	}
	cmd.AddCommand(list)
	for _, op := range []struct{ name, short string }{
		{"install", "Add a key to every node's keyring: it decrypts gossip from now on (step 1 of a rotation)"},
		{"use", "Make an installed key the primary on every node: it encrypts gossip from now on (step 2)"},
		{"remove", "Remove a key from every node's keyring; a node's primary is refused (step 3: the old key)"},
	} {
		c := &cobra.Command{Use: op.name + " --key BASE64", Short: op.short, Args: cobra.NoArgs}
		key := c.Flags().String("key", "", "the gossip key, base64 of 16, 24 or 32 bytes (e.g. openssl rand -base64 32)")
		c.RunE = func(cmd *cobra.Command, _ []string) error {
			k := strings.TrimSpace(*key)
			raw, err := base64.StdEncoding.DecodeString(k)
			if k == "" || err != nil || (len(raw) != 16 && len(raw) != 24 && len(raw) != 32) {
				return errors.New("--key: a gossip key is base64 of 16, 24 or 32 bytes")
			}
			fp := api.KeyFingerprint(raw)
			fmt.Fprintf(cmd.OutOrStdout(), "%s key %s\n", op.name, fp)
			if err := keyringPreflight(*addr, op.name, fp); err != nil {
				return err
			}
			return eachNode(cmd.OutOrStdout(), *addr, func(base string) (*api.KeyringView, error) {
				var v api.KeyringView
				err := call(base, "POST", "/v1/keyring/"+op.name, api.KeyRequest{Key: k}, &v)
				return &v, err
			})
		}
		cmd.AddCommand(c)
	}
	return cmd
}

// keyringPreflight refuses a step that would cut gossip between nodes: making a key primary
// before every alive node can decrypt with it, or removing a key that an alive node still
// encrypts with. Each node refuses the second for itself; this checks them all before any changes.
func keyringPreflight(addr, op, fp string) error {
	if op != "use" && op != "remove" {
		return nil
	}
	var members api.MembersView
	if err := call(addr, "GET", "/v1/members", nil, &members); err != nil {
		return err
	}
	var problems []string
	for _, m := range members.Members {
		if m.Status != "alive" {
			continue
		}
		var v api.KeyringView
		if err := call(schemeOf(addr)+m.HTTP, "GET", "/v1/keyring", nil, &v); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", m.Name, err))
			continue
		}
		has, primary := false, false
		for _, k := range v.Keys {
			if k.Fingerprint == fp {
				has, primary = true, k.Primary
			}
		}
		switch {
		case op == "use" && !has:
			problems = append(problems, m.Name+": the key is not installed (govgrid keyring install first)")
		case op == "remove" && primary:
			problems = append(problems, m.Name+": the key is its primary (govgrid keyring use NEW first)")
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("nothing changed: %s would cut gossip between the nodes:\n  %s", op, strings.Join(problems, "\n  "))
	}
	return nil
}

// schemeOf is addr's scheme with its "://", or "" (plain HTTP).
func schemeOf(addr string) string {
	if i := strings.Index(addr, "://"); i >= 0 {
		return addr[:i+3]
	}
	return ""
}

// eachNode runs do on every alive member the node at addr knows (by its HTTP address, with
// addr's scheme), printing one line per node, and fails when any failed.
func eachNode(out io.Writer, addr string, do func(base string) (*api.KeyringView, error)) error {
	var members api.MembersView
	if err := call(addr, "GET", "/v1/members", nil, &members); err != nil {
		return err
	}
	scheme := schemeOf(addr)
	sort.Slice(members.Members, func(i, j int) bool { return members.Members[i].Name < members.Members[j].Name })
	failed, done := 0, 0
	for _, m := range members.Members {
		if m.Status != "alive" {
			fmt.Fprintf(out, "%-16s skipped: %s (give it the keys before it rejoins: see the README)\n", m.Name, m.Status)
			continue
		}
		http := m.HTTP
		if http == "" {
			http = m.Meta.HTTP
		}
		if http == "" {
			failed++
			fmt.Fprintf(out, "%-16s error: gossip does not say its HTTP address\n", m.Name)
			continue
		}
		v, err := do(scheme + http)
		if err != nil {
			failed++
			fmt.Fprintf(out, "%-16s error: %v\n", m.Name, err)
			continue
		}
		done++
		fmt.Fprintf(out, "%-16s ok: %s\n", m.Name, keysLine(v))
	}
	if failed > 0 {
		return fmt.Errorf("failed on %d of %d alive nodes (the others are done; run it again once they answer)", failed, failed+done)
	}
	if done == 0 {
		return errors.New("no alive node answered")
	}
	return nil
}

// keysLine is a node's keyring on one line: fingerprints shortened, the primary marked *.
func keysLine(v *api.KeyringView) string {
	if !v.Encrypted {
		return "gossip not encrypted (no keys)"
	}
	var parts []string
	for _, k := range v.Keys {
		f := strings.TrimPrefix(k.Fingerprint, "sha256:")
		if len(f) > 16 {
			f = f[:16]
		}
		if k.Primary {
			f += "*"
		}
		parts = append(parts, f)
	}
	return fmt.Sprintf("%d keys: %s", len(v.Keys), strings.Join(parts, " "))
}
