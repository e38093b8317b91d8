package report

import (
	"encoding/json"
	"io"
)

// EncodeJSON writes r as it is, as indented JSON followed by a newline.
// Decoding the output gives r back.
func EncodeJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}
