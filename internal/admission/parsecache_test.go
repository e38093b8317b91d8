package admission

import (
	"fmt"
	"testing"

	"github.com/customs-dev/customs/internal/policy"
)

// TestParsedImages: the memo answers as policy.ParseImage does, the second
// time too (normalised Docker Hub names, tags and digests), keeps no
// failure, and never holds more than maxParsedImages references.
func TestParsedImages(t *testing.T) {
	var p parsedImages
	for _, ref := range []string{"nginx", "gcr.io/kuar-demo/kuard-amd64:blue", "Docker.io/library/nginx:1",
		"localhost:5000/a/b:t@sha256:" + fmt.Sprintf("%064x", 1)} {
		want, wantErr := policy.ParseImage(ref)
		for i := range 2 {
			got, err := p.parse(ref)
			if (err != nil) != (wantErr != nil) || got != want {
				t.Fatalf("%q (call %d) = %+v %v, want %+v %v", ref, i+1, got, err, want, wantErr)
			}
		}
	}
	if _, err := p.parse("UPPER/x"); err == nil {
		t.Fatal("UPPER/x parsed, want the upper-case host error")
	}
	if _, ok := p.m["UPPER/x"]; ok {
		t.Fatal("a failed parse was kept")
	}
	for i := range maxParsedImages + 10 {
		if _, err := p.parse(fmt.Sprintf("r.example/a/b:%d", i)); err != nil {
			t.Fatal(err)
		}
		if len(p.m) > maxParsedImages {
			t.Fatalf("memo holds %d references, more than %d", len(p.m), maxParsedImages)
		}
	}
}
