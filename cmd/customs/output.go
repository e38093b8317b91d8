package main

import (
	"encoding/json"
	"io"
)

// writeJSON writes v to w as indented JSON followed by a newline: the
// --json / --format json output of every command.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
