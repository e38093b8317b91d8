package config

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"gopkg.in/yaml.v3"
)

// EnvPrefix starts every environment variable that overrides a key.
const EnvPrefix = "CUSTOMS_"

// Load returns the defaults, overridden by the YAML file at path (if path is
// not empty), then by CUSTOMS_* variables found in environ (KEY=VALUE
// strings, as os.Environ returns). It does not validate.
func Load(path string, environ []string) (Config, error) {
	c := Default()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return c, fmt.Errorf("config file: %w", err)
		}
		if err := decodeYAML(data, &c); err != nil {
			return c, fmt.Errorf("config file %s: %w", path, err)
		}
	}
	keys := envKeys()
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) {
			continue
		}
		key, known := keys[name]
		if !known {
			continue // other CUSTOMS_* variables (credentials, admin password) are not config keys
		}
		if err := c.Set(key, value); err != nil {
			return c, fmt.Errorf("environment variable %s: %w", name, err)
		}
	}
	return c, nil
}

// decodeYAML decodes strictly: an unknown key or a bad value is an error
// naming its line and its dotted key, e.g. `line 2 (gc.interval): "soon" is
// not a duration`.
func decodeYAML(data []byte, c *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	// An empty file (io.EOF) means "all defaults".
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return nameKeys(err, data)
	}
	return nil
}

// lineRef matches the "line N:" by which the YAML decoder (and Duration's
// UnmarshalYAML) locate an error.
var lineRef = regexp.MustCompile(`\bline (\d+):`)

// nameKeys rewrites each "line N:" of err as "line N (key):", with the dotted
// key whose name or scalar value is on line N of data, so that an error says
// which setting is wrong and not only where. It returns err unchanged when
// data does not parse or no line is known.
func nameKeys(err error, data []byte) error {
	var root yaml.Node
	if yaml.Unmarshal(data, &root) != nil {
		return err
	}
	keys := map[int][]string{}
	keyLines(&root, "", keys, 0)
	msg := err.Error()
	named := lineRef.ReplaceAllStringFunc(msg, func(m string) string {
		n, convErr := strconv.Atoi(lineRef.FindStringSubmatch(m)[1])
		if convErr != nil || len(keys[n]) == 0 {
			return m
		}
		return fmt.Sprintf("line %d (%s):", n, strings.Join(keys[n], ", "))
	})
	if named == msg {
		return err
	}
	return errors.New(named)
}

// keyLines records, for every mapping key under n, its dotted path at the
// line of the key and of a value that is not a mapping (whose own keys are
// recorded instead). Aliases are not followed, and
// nesting deeper than any configuration key is not walked.
func keyLines(n *yaml.Node, prefix string, out map[int][]string, depth int) {
	if depth > 8 {
		return
	}
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, c := range n.Content {
			keyLines(c, prefix, out, depth+1)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			path := k.Value
			if prefix != "" {
				path = prefix + "." + k.Value
			}
			add := func(line int) {
				if !slices.Contains(out[line], path) {
					out[line] = append(out[line], path)
				}
			}
			add(k.Line)
			if v.Kind != yaml.MappingNode && v.Line != k.Line {
				add(v.Line)
			}
			keyLines(v, path, out, depth+1)
		}
	}
}

// Keys lists every configuration key in dotted form, sorted.
func Keys() []string {
	var keys []string
	walk(reflect.TypeOf(Config{}), "", func(key string, _ []int) { keys = append(keys, key) })
	sort.Strings(keys)
	return keys
}

// EnvName returns the environment variable that overrides key.
func EnvName(key string) string {
	var b strings.Builder
	b.WriteString(EnvPrefix)
	for i, part := range strings.Split(key, ".") {
		if i > 0 {
			b.WriteByte('_')
		}
		for j, r := range part {
			if unicode.IsUpper(r) && j > 0 && !unicode.IsUpper(rune(part[j-1])) {
				b.WriteByte('_')
			}
			b.WriteRune(unicode.ToUpper(r))
		}
	}
	return b.String()
}

func envKeys() map[string]string {
	m := map[string]string{}
	for _, k := range Keys() {
		m[EnvName(k)] = k
	}
	return m
}

// Set parses value into the field named by the dotted key. Lists are comma
// separated. An unknown key or an unparsable value is an error naming it.
func (c *Config) Set(key, value string) error {
	var index []int
	walk(reflect.TypeOf(Config{}), "", func(k string, idx []int) {
		if k == key {
			index = idx
		}
	})
	if index == nil {
		return fmt.Errorf("unknown configuration key %q", key)
	}
	f := reflect.ValueOf(c).Elem().FieldByIndex(index)
	if err := setValue(f, value); err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	return nil
}

var durationType = reflect.TypeOf(Duration(0))

func setValue(f reflect.Value, value string) error {
	if u, ok := f.Addr().Interface().(encoding.TextUnmarshaler); ok {
		return u.UnmarshalText([]byte(value))
	}
	if f.Type() == durationType {
		d, err := ParseDuration(value)
		if err != nil {
			return err
		}
		f.SetInt(int64(d))
		return nil
	}
	switch f.Kind() {
	case reflect.String:
		f.SetString(value)
	case reflect.Bool:
		b, err := strconv.ParseBool(value)
		if err != nil {
			return fmt.Errorf("%q is not a boolean", value)
		}
		f.SetBool(b)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not an integer", value)
		}
		f.SetInt(n)
	case reflect.Slice:
		var items []string
		for _, s := range strings.Split(value, ",") {
			if s = strings.TrimSpace(s); s != "" {
				items = append(items, s)
			}
		}
		f.Set(reflect.ValueOf(items))
	default:
		return fmt.Errorf("cannot set a %s from text", f.Kind())
	}
	return nil
}

// walk calls fn for every leaf field of t with its dotted yaml key and field
// index path.
func walk(t reflect.Type, prefix string, fn func(key string, index []int)) {
	walkIndex(t, prefix, nil, fn)
}

func walkIndex(t reflect.Type, prefix string, index []int, fn func(string, []int)) {
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		tag := strings.Split(sf.Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" {
			continue
		}
		key := tag
		if prefix != "" {
			key = prefix + "." + tag
		}
		idx := append(append([]int(nil), index...), i)
		if sf.Type.Kind() == reflect.Struct && sf.Type != durationType {
			walkIndex(sf.Type, key, idx, fn)
			continue
		}
		fn(key, idx)
	}
}

// Duration is a time.Duration written as "90s", "15m", "24h" or "7d".
type Duration time.Duration

// ParseDuration parses Go duration syntax plus a "d" (24h) suffix.
func ParseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseFloat(days, 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration (like 30s, 15m, 24h, 7d)", s)
		}
		return Duration(n * float64(24*time.Hour)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (like 30s, 15m, 24h, 7d)", s)
	}
	return Duration(d), nil
}

// String formats the duration in Go syntax.
func (d Duration) String() string { return time.Duration(d).String() }

// Std returns the duration as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// UnmarshalYAML accepts a duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("line %d: expected a duration", n.Line)
	}
	v, err := ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = v
	return nil
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }
