package policy

import (
	"bytes"
	"fmt"

	"gopkg.in/yaml.v3"
)

// Marshal writes policies as YAML documents separated by "---", in the
// shape Parse reads (Parse(Marshal(p)) gives p back). Rego sources are
// written as literal blocks.
func Marshal(policies ...*Policy) ([]byte, error) {
	var buf bytes.Buffer
	for i, p := range policies {
		if i > 0 {
			buf.WriteString("---\n")
		}
		enc := yaml.NewEncoder(&buf)
		enc.SetIndent(2)
		if err := enc.Encode(p); err != nil {
			return nil, fmt.Errorf("policy %q: %v", p.Metadata.Name, err)
		}
		if err := enc.Close(); err != nil {
			return nil, fmt.Errorf("policy %q: %v", p.Metadata.Name, err)
		}
	}
	return buf.Bytes(), nil
}
