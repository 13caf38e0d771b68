package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/govgrid/govgrid/api"
	"github.com/govgrid/govgrid/catalog"
	"github.com/spf13/cobra"
)

// newCatalogCommand is `govgrid catalog import|export FILE`: the catalogue of items as a JSON or
// CSV file (by its extension), read and checked here first, every problem named by line.
func newCatalogCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "catalog", Short: "Import and export the catalogue of items (事项目录)"}
	addr := addrFlag(cmd)
	imp := &cobra.Command{
		Use:   "import FILE",
		Short: "Add or replace the file's departments and items in the catalogue of the node's site (the district's, or a township's local items)",
		Long: "Reads FILE (.csv is CSV, anything else JSON), checks every department and item and prints every\n" +
			"problem with its line; a file with problems changes nothing. Items already in force as given are\n" +
			"left alone, so importing the same file again writes nothing. Until accounts exist the node takes\n" +
			"catalogue changes only from its own host.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			format := catalog.FormatOf(args[0])
			if _, err := catalog.Read(bytes.NewReader(data), format, nil); err != nil {
				if ps, ok := err.(catalog.Problems); ok {
					return problemsError(args[0], ps)
				}
				return err
			}
			var res api.CatalogImport
			if err := post(*addr, "/v1/catalog/import", format, data, &res); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "imported %d departments and %d items from %s (%d documents changed)\n", res.Departments, res.Items, args[0], res.Changed)
			return nil
		},
	}
	exp := &cobra.Command{
		Use:   "export FILE",
		Short: "Write the catalogue in force at the node's site to FILE (.csv is CSV, anything else JSON; - for standard output)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			format := catalog.FormatOf(args[0])
			resp, err := httpClient.Get(baseURL(*addr) + "/v1/catalog/export?format=" + string(format))
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			data, err := io.ReadAll(resp.Body)
			if err != nil {
				return err
			}
			if resp.StatusCode != http.StatusOK {
				return newAPIError(http.MethodGet, "/v1/catalog/export", resp, data)
			}
			if args[0] == "-" {
				_, err = cmd.OutOrStdout().Write(data)
				return err
			}
			return os.WriteFile(args[0], data, 0o644)
		},
	}
	cmd.AddCommand(imp, exp)
	return cmd
}

// problemsError lists a file's problems, one per line.
func problemsError(file string, ps catalog.Problems) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d problems, nothing imported:", file, len(ps))
	for _, p := range ps {
		fmt.Fprintf(&b, "\n  %s", p)
	}
	return fmt.Errorf("%s", b.String())
}

// post sends a catalogue file to a node as its format's content type.
func post(addr, path string, format catalog.Format, data []byte, out any) error {
	ct := "application/json"
	if format == catalog.FormatCSV {
		ct = "text/csv"
	}
	return callRaw(addr, http.MethodPost, path, ct, data, out)
}
