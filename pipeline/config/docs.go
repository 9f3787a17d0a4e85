package config

import (
	"fmt"
	"strings"
)

// MarkdownTable renders Vars as the reference table of docs/configuration.md.
func MarkdownTable() string { return MarkdownTableOf(Vars()) }

// MarkdownTableOf renders any list of variables as a reference table.
func MarkdownTableOf(vars []Var) string {
	var b strings.Builder
	b.WriteString("| Variable | Default | Description |\n|---|---|---|\n")
	for _, v := range vars {
		def := "(unset)"
		if v.Default != "" {
			def = "`" + v.Default + "`"
		}
		desc := strings.ReplaceAll(v.Description, "|", `\|`)
		if v.Secret {
			desc += " Secret: never logged."
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", v.Name, def, desc)
	}
	return b.String()
}
