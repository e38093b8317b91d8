package sqldb

import (
	"encoding/json"
	"testing"
)

// appendDetailsJSON must write exactly what json.Marshal writes for the
// same map, so that rows stored before and after it read back alike.
func checkDetailsJSON(t *testing.T, d map[string]string) {
	t.Helper()
	want, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	if got := appendDetailsJSON(nil, d); string(got) != string(want) {
		t.Errorf("appendDetailsJSON(%q)\n got %s\nwant %s", d, got, want)
	}
}

func TestAppendDetailsJSON(t *testing.T) {
	for name, d := range map[string]map[string]string{
		"one":        {"tag": "v1"},
		"sorted":     {"z": "1", "a": "2", "mediaType": "application/vnd.oci.image.manifest.v1+json", "size": "528"},
		"escapes":    {"q\"uote": "back\\slash", "ctl": "a\nb\rc\td\be\ff\x00g\x1f", "html": "<a href='x'>&amp;</a>"},
		"unicode":    {"é": "日本語 \u2028 \u2029 \U0001F600"},
		"invalid":    {"bad": "a\xffb\xc3"},
		"empty":      {"": ""},
		"many keys":  {"1": "a", "2": "b", "3": "c", "4": "d", "5": "e", "6": "f", "7": "g", "8": "h", "9": "i", "10": "j", "11": "k", "12": "l", "13": "m", "14": "n", "15": "o", "16": "p", "17": "q"},
		"delete key": {"DEL": "\x7f"},
	} {
		t.Run(name, func(t *testing.T) { checkDetailsJSON(t, d) })
	}
}

func FuzzAppendDetailsJSON(f *testing.F) {
	f.Add("tag", "v1", "size", "1")
	f.Add("<k>", "a\"b\\c\n", "\u2028", "\xff")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		checkDetailsJSON(t, map[string]string{k1: v1, k2: v2})
	})
}
