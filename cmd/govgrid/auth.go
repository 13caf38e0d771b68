package main

import (
	"bufio"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/govgrid/govgrid/api"
	"github.com/govgrid/govgrid/auth"
	"github.com/govgrid/govgrid/node"
	"github.com/spf13/cobra"
)

// The CLI's token: --token, else GOVGRID_TOKEN, else the file `govgrid login` wrote
// ($XDG_CONFIG_HOME/govgrid/token, or ~/.config/govgrid/token, mode 0600).
var tokenFlag string

// tokenFile is where `govgrid login` keeps the token.
func tokenFile() (string, error) {
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "govgrid", "token"), nil
}

// operatorKeyFlag is the file of the node's operator key (--operator-key).
var operatorKeyFlag string

// authorization is the Authorization header requests carry: the operator key's when
// --operator-key is given, else the current token's, else "".
func authorization() (string, error) {
	if operatorKeyFlag != "" {
		b, err := os.ReadFile(operatorKeyFlag)
		if err != nil {
			return "", fmt.Errorf("--operator-key: %w", err)
		}
		return "Operator " + strings.TrimSpace(string(b)), nil
	}
	if t := currentToken(); t != "" {
		return "Bearer " + t, nil
	}
	return "", nil
}

// currentToken is the token requests carry, or "".
func currentToken() string {
	if tokenFlag != "" {
		return tokenFlag
	}
	if t := os.Getenv("GOVGRID_TOKEN"); t != "" {
		return t
	}
	if f, err := tokenFile(); err == nil {
		if b, err := os.ReadFile(f); err == nil {
			return strings.TrimSpace(string(b))
		}
	}
	return ""
}

// newLoginCommand is `govgrid login --user U`: signs in at the node's site, reading the password
// from standard input (a terminal's line, or a pipe), and keeps the token for later commands.
func newLoginCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "login --user USER [--addr HOST:PORT]",
		Short: "Sign in at the node's site and keep the token for later commands (the password is read from standard input)",
		Args:  cobra.NoArgs,
	}
	addr := addrFlag(cmd)
	user := cmd.Flags().String("user", "", "the account's user name")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if *user == "" {
			return errors.New("--user is required")
		}
		fmt.Fprint(cmd.ErrOrStderr(), "password: ")
		line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
		if err != nil && line == "" {
			return fmt.Errorf("reading the password: %w", err)
		}
		fmt.Fprintln(cmd.ErrOrStderr())
		var a api.LoginAnswer
		if err := call(*addr, http.MethodPost, "/v1/auth/login", map[string]string{"user": *user, "password": strings.TrimRight(line, "\r\n")}, &a); err != nil {
			return err
		}
		f, err := tokenFile()
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(f), 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(f, []byte(a.Token+"\n"), 0o600); err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "signed in as %s (%s) of %s, roles %v, until %s; token kept in %s\n", a.User, a.Name, a.Site, a.Roles, a.ExpiresAt.Local().Format("2006-01-02 15:04"), f)
		return nil
	}
	return cmd
}

// newAuthCommand is `govgrid auth bootstrap`.
func newAuthCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "auth", Short: "The grid's first account"}
	addr := addrFlag(cmd)
	cmd.AddCommand(&cobra.Command{
		Use:   "bootstrap [--addr HOST:PORT]",
		Short: "Create the grid's first administrator at the district, once, and print its user and password as JSON",
		Long:  "Run it on a district node's own host: the node takes it only from there, and only while the grid has no account.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var a api.BootstrapAnswer
			if err := call(*addr, http.MethodPost, "/v1/auth/bootstrap", nil, &a); err != nil {
				return err
			}
			return printJSON(a)
		},
	})
	return cmd
}

// newAccountCommand is `govgrid account add|list`.
func newAccountCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "account", Short: "Staff accounts (an administrator's token: govgrid login)"}
	addr := addrFlag(cmd)
	add := &cobra.Command{
		Use:   "add --user U --name NAME --site SITE --roles r1,r2 [--password P]",
		Short: "Add an account at the node's site (the district, or a township for its subtree); without --password one is drawn and printed",
		Args:  cobra.NoArgs,
	}
	user := add.Flags().String("user", "", "sign-in name: 2-32 of a-z 0-9 . _ -")
	name := add.Flags().String("name", "", "the person's name")
	site := add.Flags().String("site", "", "the site the person works at")
	roles := add.Flags().StringSlice("roles", nil, "clerk, grid_worker, officer, reviewer, approver, supervisor, admin")
	password := add.Flags().String("password", "", "the first password (at least 10 characters)")
	add.RunE = func(cmd *cobra.Command, _ []string) error {
		pw := *password
		if pw == "" {
			var err error
			if pw, err = node.RandomPassword(); err != nil {
				return err
			}
		}
		req := api.AccountRequest{User: *user, Password: pw, Name: *name, Site: *site}
		for _, r := range *roles {
			req.Roles = append(req.Roles, auth.Role(strings.TrimSpace(r)))
		}
		var a struct {
			User  string      `json:"user"`
			Name  string      `json:"name"`
			Site  string      `json:"site"`
			Roles []auth.Role `json:"roles"`
		}
		if err := call(*addr, http.MethodPost, "/v1/accounts", req, &a); err != nil {
			return err
		}
		return printJSON(map[string]any{"user": a.User, "name": a.Name, "site": a.Site, "roles": a.Roles, "password": pw})
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "The accounts in force at the node's site (admin or supervisor)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out struct {
				Accounts []auth.Account `json:"accounts"`
			}
			if err := call(*addr, http.MethodGet, "/v1/accounts", nil, &out); err != nil {
				return err
			}
			return printJSON(out.Accounts)
		},
	}
	cmd.AddCommand(add, list)
	return cmd
}
