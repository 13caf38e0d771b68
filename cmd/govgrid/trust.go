package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/govgrid/govgrid/api"
	"github.com/govgrid/govgrid/node"
	"github.com/govgrid/govgrid/pki"
	"github.com/spf13/cobra"
)

// newTokenCommand is `govgrid token create|list|revoke`: the district's join tokens.
func newTokenCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Issue, list or revoke join tokens (at the district): a new node starts with --join-token",
	}
	addr := addrFlag(cmd)
	create := &cobra.Command{Use: "create --site SITE", Short: "Issue a join token for a new node of SITE (\"*\": any site); printed once", Args: cobra.NoArgs}
	site := create.Flags().String("site", "", `the site the new node serves, or "*" for any site`)
	ttl := create.Flags().Duration("ttl", 24*time.Hour, "how long the token may be redeemed (at most 720h)")
	uses := create.Flags().Int("uses", 1, "how many nodes it admits")
	jsonOut := create.Flags().Bool("json", false, "print the whole answer as JSON")
	create.RunE = func(cmd *cobra.Command, _ []string) error {
		var t api.JoinToken
		if err := call(*addr, "POST", "/v1/join-tokens", api.JoinTokenRequest{Site: *site, TTL: ttl.String(), Uses: *uses}, &t); err != nil {
			return err
		}
		if *jsonOut {
			return printJSON(t)
		}
		fmt.Fprintln(cmd.OutOrStdout(), t.Token)
		fmt.Fprintf(cmd.ErrOrStderr(), "join token %s: site %s, %d use(s), until %s\n", t.ID, t.Site, t.UsesLeft, t.Expires.Local().Format(time.RFC3339))
		return nil
	}
	list := &cobra.Command{Use: "list", Short: "List the join tokens (never their secrets)", Args: cobra.NoArgs}
	list.RunE = func(cmd *cobra.Command, _ []string) error {
		var ts []api.JoinToken
		if err := call(*addr, "GET", "/v1/join-tokens", nil, &ts); err != nil {
			return err
		}
		w := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 4, 2, ' ', 0)
		fmt.Fprintln(w, "ID\tSITE\tUSES LEFT\tEXPIRES\tSTATE\tCREATED BY\tADMITTED")
		for _, t := range ts {
			state := "valid"
			switch {
			case t.Revoked:
				state = "revoked"
			case time.Now().After(t.Expires):
				state = "expired"
			case t.UsesLeft == 0:
				state = "used up"
			}
			fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\t%v\n", t.ID, t.Site, t.UsesLeft, t.Expires.Local().Format(time.RFC3339), state, t.CreatedBy, t.Admitted)
		}
		return w.Flush()
	}
	revoke := &cobra.Command{Use: "revoke ID", Short: "Revoke a join token: it admits nobody more", Args: cobra.ExactArgs(1)}
	revoke.RunE = func(cmd *cobra.Command, args []string) error {
		var t api.JoinToken
		if err := call(*addr, "DELETE", "/v1/join-tokens/"+args[0], nil, &t); err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "join token %s revoked\n", t.ID)
		return nil
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}

// newTLSCommand is `govgrid tls ca create` and `govgrid tls cert create`: the grid's CA and node
// certificates, for operators who make them by hand (the join token does it for them otherwise).
func newTLSCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "tls", Short: "Make the grid's certificate authority and node certificates"}
	ca := &cobra.Command{Use: "ca", Short: "The grid's certificate authority"}
	caCreate := &cobra.Command{
		Use:   "create --grid NAME --dir DIR",
		Short: "Make a CA for the grid: DIR/ca.pem (every node's) and DIR/ca.key (the district's issuing nodes'; keep a copy offline)",
		Args:  cobra.NoArgs,
	}
	grid := caCreate.Flags().String("grid", node.DefaultConfig().GridName, "the grid's name (its nodes' --grid)")
	dir := caCreate.Flags().String("dir", ".", "where to write ca.pem and ca.key")
	years := caCreate.Flags().Int("years", 10, "how many years the CA is valid")
	caCreate.RunE = func(cmd *cobra.Command, _ []string) error {
		if _, err := os.Stat(filepath.Join(*dir, pki.CAKeyFile)); err == nil {
			return fmt.Errorf("%s exists: a grid has one CA (remove it yourself to start a new grid)", filepath.Join(*dir, pki.CAKeyFile))
		}
		c, err := pki.NewCA(*grid, time.Duration(*years)*365*24*time.Hour)
		if err != nil {
			return err
		}
		if err := pki.WriteCA(*dir, c); err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "CA of grid %s: %s (pin sha256:%s), key %s\n", *grid,
			filepath.Join(*dir, pki.CACertFile), pki.Pin(c.Cert), filepath.Join(*dir, pki.CAKeyFile))
		fmt.Fprintln(cmd.ErrOrStderr(), "Copy ca.key to the TLS directory of the district nodes that issue certificates (DATA_DIR/tls), and keep a copy offline: without it no new node joins and no certificate is renewed.")
		return nil
	}
	ca.AddCommand(caCreate)
	certCmd := &cobra.Command{Use: "cert", Short: "Node certificates"}
	certCreate := &cobra.Command{
		Use:   "create --ca-dir DIR --site SITE --node NODE --out DATA_DIR/tls",
		Short: "Sign a certificate for a node with the CA in --ca-dir, into the node's TLS directory",
		Args:  cobra.NoArgs,
	}
	caDir := certCreate.Flags().String("ca-dir", ".", "the directory with ca.pem and ca.key")
	site := certCreate.Flags().String("site", "", "the node's site")
	name := certCreate.Flags().String("node", "", "the node's name")
	out := certCreate.Flags().String("out", "", "the node's TLS directory (DATA_DIR/tls of the node)")
	days := certCreate.Flags().Int("days", 365, "how many days the certificate is valid (a node renews at two thirds, at a district node holding ca.key)")
	withKey := certCreate.Flags().Bool("with-ca-key", false, "copy ca.key too: for a district node that issues certificates")
	certCreate.RunE = func(cmd *cobra.Command, _ []string) error {
		if *site == "" || *name == "" || *out == "" {
			return errors.New("--site, --node and --out are required")
		}
		c, err := pki.LoadCA(*caDir)
		if err != nil {
			return err
		}
		if err := pki.Provision(*out, c, pki.Identity{Grid: c.Grid(), Site: *site, Node: *name}, time.Duration(*days)*24*time.Hour, *withKey); err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%s: certificate for %s\n", *out, pki.Identity{Grid: c.Grid(), Site: *site, Node: *name})
		return nil
	}
	certCmd.AddCommand(certCreate)
	revoke := &cobra.Command{Use: "revoke --site SITE --node NODE --reason R", Short: "Revoke a node's certificates (at the district): refused at every handshake and renewal", Args: cobra.NoArgs}
	addr := addrFlag(revoke)
	rSite := revoke.Flags().String("site", "", "the node's site")
	rNode := revoke.Flags().String("node", "", "the node's name (a replacement node takes a new one)")
	reason := revoke.Flags().String("reason", "", "why, for the list and the audit trail")
	revoke.RunE = func(cmd *cobra.Command, _ []string) error {
		var rc api.RevokedCertificate
		if err := call(*addr, "POST", "/v1/certificates/revoke", map[string]string{"site": *rSite, "node": *rNode, "reason": *reason}, &rc); err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "revoked %s of site %s\n", rc.Node, rc.Site)
		return nil
	}
	revoked := &cobra.Command{Use: "revoked", Short: "List the revoked node certificates this site knows", Args: cobra.NoArgs}
	rAddr := addrFlag(revoked)
	revoked.RunE = func(cmd *cobra.Command, _ []string) error {
		var list []api.RevokedCertificate
		if err := call(*rAddr, "GET", "/v1/certificates/revoked", nil, &list); err != nil {
			return err
		}
		return printJSON(list)
	}
	cmd.AddCommand(ca, certCmd, revoke, revoked)
	return cmd
}
