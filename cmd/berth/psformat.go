package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"text/template"
)

// psHeaders are the column titles `ps --format "table ..."` prints for
// each field, docker compose's.
var psHeaders = map[string]string{
	"Command": "COMMAND", "CreatedAt": "CREATED AT", "ExitCode": "EXIT CODE", "Health": "HEALTH",
	"ID": "CONTAINER ID", "Image": "IMAGE", "Labels": "LABELS", "LocalVolumes": "LOCAL VOLUMES",
	"Mounts": "MOUNTS", "Name": "NAME", "Names": "NAMES", "Networks": "NETWORKS", "Ports": "PORTS",
	"Project": "PROJECT", "Publishers": "PUBLISHERS", "RunningFor": "CREATED", "Service": "SERVICE",
	"Size": "SIZE", "State": "STATE", "Status": "STATUS",
}

// templateFuncs are the functions Docker's format templates offer.
var templateFuncs = template.FuncMap{
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	"join":  strings.Join,
	"split": strings.Split,
	"lower": strings.ToLower,
	"upper": strings.ToUpper,
	"title": func(s string) string {
		if s == "" {
			return s
		}
		return strings.ToUpper(s[:1]) + s[1:]
	},
	"pad": func(s string, before, after int) string {
		return strings.Repeat(" ", before) + s + strings.Repeat(" ", after)
	},
	"truncate": func(s string, n int) string {
		if len(s) <= n {
			return s
		}
		return s[:n]
	},
}

// parsePsTemplate parses a --format that is neither table nor json: a Go
// template of a container's fields (those of --format json), a line
// each; "table TEMPLATE" aligns the columns under a header.
func parsePsTemplate(format string) (t *template.Template, table bool, err error) {
	text, table := strings.CutPrefix(format, "table ")
	text = strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(text)
	t, err = template.New("format").Funcs(templateFuncs).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, false, fmt.Errorf("invalid --format %q: %w", format, err)
	}
	return t, table, nil
}

// printPsTemplate prints rows with a template from parsePsTemplate.
func printPsTemplate(w io.Writer, t *template.Template, table bool, rows []psRow) error {
	out := w
	var tw *tabwriter.Writer
	if table {
		tw = tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
		out = tw
		if err := t.Execute(out, psHeaders); err != nil {
			return fmt.Errorf("--format: %w", err)
		}
		fmt.Fprintln(out)
	}
	for _, r := range rows {
		if err := t.Execute(out, r); err != nil {
			return fmt.Errorf("--format: %w", err)
		}
		fmt.Fprintln(out)
	}
	if tw != nil {
		return tw.Flush()
	}
	return nil
}
