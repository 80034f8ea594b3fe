package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// printList prints a listing as a table: the header and the rows table
// writes when there are n > 0 records, and otherwise the one line none,
// which says that nothing matched (noneMatch) — never a lone header,
// which reads as a failure to load. Every listing prints through it;
// JSON output is the listing's own document, [] when empty.
func printList(w io.Writer, n int, none string, table func(tw io.Writer)) error {
	if n == 0 {
		_, err := fmt.Fprintln(w, none)
		return err
	}
	tw := newTable(w)
	table(tw)
	return tw.Flush()
}

// noneMatch is the line of an empty listing of what: "no artifacts", or
// with the filters that were given, as label and value pairs (an empty
// value was not given), "no artifacts match name "payments/ap", state
// admitted".
func noneMatch(what string, filters ...string) string {
	var given []string
	for i := 0; i+1 < len(filters); i += 2 {
		if filters[i+1] != "" {
			given = append(given, filters[i]+" "+filters[i+1])
		}
	}
	if len(given) == 0 {
		return "no " + what
	}
	return "no " + what + " match " + strings.Join(given, ", ")
}

// quoted quotes a name or pattern for noneMatch; "" stays "" (not given).
func quoted(s string) string {
	if s == "" {
		return ""
	}
	return strconv.Quote(s)
}

// quotedAll quotes each of a repeated filter flag's values.
func quotedAll(v []string) string {
	q := make([]string, len(v))
	for i, s := range v {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, " or ")
}
