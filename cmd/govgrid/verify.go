package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/govgrid/govgrid/api"
	"github.com/govgrid/govgrid/casework"
	"github.com/spf13/cobra"
)

// newVerifyCommand is `govgrid verify FILE`: checks a certificate (the JSON of
// GET /v1/cases/{number}/certificate, or the seal alone, as its QR code holds it) against the
// grid's keys: those of --keys (saved from GET /v1/seal/keys: offline), or asked of --addr.
func newVerifyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "verify FILE",
		Short: "Check a certificate's seal against the grid's keys, offline with --keys",
		Args:  cobra.ExactArgs(1),
	}
	addr := addrFlag(cmd)
	keysFile := cmd.Flags().String("keys", "", "the grid's keys, saved from GET /v1/seal/keys (`govgrid seal keys > keys.json`); without it they are asked of --addr")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		b, err := os.ReadFile(args[0])
		if err != nil {
			return err
		}
		seal, err := readSeal(b)
		if err != nil {
			return fmt.Errorf("%s: %w", args[0], err)
		}
		var keys api.SealKeys
		if *keysFile != "" {
			kb, err := os.ReadFile(*keysFile)
			if err != nil {
				return err
			}
			if err := json.Unmarshal(kb, &keys); err != nil {
				return fmt.Errorf("%s is not the grid's keys: %w", *keysFile, err)
			}
		} else if err := call(*addr, "GET", "/v1/seal/keys", nil, &keys); err != nil {
			return err
		}
		c := seal.Certificate
		switch err := keys.Verify(seal); {
		case err == nil:
			fmt.Fprintf(cmd.OutOrStdout(), "印章有效 seal valid: %s %s %s, %s by %s on %s\n", c.Number, c.ItemCode, c.Applicant, c.Decision, c.Site, c.DecidedOn)
			return nil
		case errors.Is(err, casework.ErrSealRevoked):
			return fmt.Errorf("印章密钥已吊销 the seal of %s verifies, but site %s's key was revoked: %w", c.Number, c.Site, err)
		default:
			return fmt.Errorf("印章无效 the certificate of %s does not verify: %w", c.Number, err)
		}
	}
	return cmd
}

// readSeal reads a certificate file: a CertificateAnswer, or a bare seal.
func readSeal(b []byte) (*casework.Seal, error) {
	var ans api.CertificateAnswer
	if err := json.Unmarshal(b, &ans); err == nil && ans.Seal != nil {
		return ans.Seal, nil
	}
	var s casework.Seal
	if err := json.Unmarshal(b, &s); err != nil || s.Certificate.Number == "" {
		return nil, errors.New("not a certificate (the JSON of GET /v1/cases/{number}/certificate, or its seal)")
	}
	return &s, nil
}

// newSealCommand is `govgrid seal keys`: prints the grid's keys (to save for govgrid verify).
func newSealCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "seal", Short: "The grid's seal keys"}
	addr := addrFlag(cmd)
	cmd.AddCommand(&cobra.Command{
		Use:   "keys",
		Short: "Print the grid's keys as the node at --addr knows them (save them for govgrid verify --keys)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out json.RawMessage
			if err := call(*addr, "GET", "/v1/seal/keys", nil, &out); err != nil {
				return err
			}
			return writeJSON(cmd.OutOrStdout(), out)
		},
	})
	return cmd
}
