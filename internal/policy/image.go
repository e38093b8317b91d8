package policy

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/distribution/reference"
)

// DockerHub is the canonical host of Docker Hub; index.docker.io and
// registry-1.docker.io are read as it.
const DockerHub = "docker.io"

// Image is an image reference as the user wrote it, normalised: Docker Hub
// names in full ("nginx" is docker.io/library/nginx:latest is written as
// Registry "docker.io", Repository "library/nginx", Tag "" unless given),
// the registry host in lower case.
type Image struct {
	// Registry is the host, with ":port" when one was written
	// ("registry.corp.example:5000").
	Registry string `json:"registry"`
	// Repository is the path below the registry ("library/nginx").
	Repository string `json:"repository"`
	// Tag is the tag written in the reference; "" when none was.
	Tag string `json:"tag,omitempty"`
	// Digest is the digest written in the reference ("sha256:..."); ""
	// when none was. The digest the image resolved to is Input.Digest.
	Digest string `json:"digest,omitempty"`
}

// ParseImage reads a reference in Docker's syntax ("nginx",
// "gcr.io/kuar-demo/kuard-amd64:blue", "host:5000/a/b:t@sha256:..."),
// normalising Docker Hub names and the host's case. The error names the
// reference.
func ParseImage(ref string) (Image, error) {
	if ref == "" {
		return Image{}, fmt.Errorf("image reference is empty")
	}
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return Image{}, fmt.Errorf("image reference %q: %v", ref, err)
	}
	img := Image{Registry: reference.Domain(named), Repository: reference.Path(named)}
	if t, ok := named.(reference.Tagged); ok {
		img.Tag = t.Tag()
	}
	if d, ok := named.(reference.Digested); ok {
		img.Digest = d.Digest().String()
	}
	if !looksLikeHost(strings.ToLower(img.Registry)) {
		// Docker reads an upper-case first component as a host; in lower
		// case the same name would be a Docker Hub path. Refuse the
		// ambiguity rather than guess.
		return Image{}, fmt.Errorf("image reference %q: %q is read as a registry host only because it has upper-case letters; write the host in lower case with a '.' or ':port', or the path in lower case", ref, img.Registry)
	}
	img.Registry, img.Repository = canonicalName(img.Registry, img.Repository)
	return img, nil
}

// canonicalName lower-cases the host, maps Docker Hub's aliases to
// docker.io and adds library/ to its one-segment names.
func canonicalName(host, path string) (string, string) {
	host = strings.ToLower(host)
	switch host {
	case "index.docker.io", "registry-1.docker.io":
		host = DockerHub
	}
	if host == DockerHub && !strings.Contains(path, "/") {
		path = "library/" + path
	}
	return host, path
}

// Name is registry/repository ("docker.io/library/nginx").
func (i Image) Name() string { return i.Registry + "/" + i.Repository }

// String is the reference: name, ":tag" when there is one, "@digest" when
// there is one.
func (i Image) String() string {
	s := i.Name()
	if i.Tag != "" {
		s += ":" + i.Tag
	}
	if i.Digest != "" {
		s += "@" + i.Digest
	}
	return s
}

// EffectiveTag is the tag a pull would use: Tag, or "latest" when the
// reference has neither tag nor digest; "" for a digest-only reference.
func (i Image) EffectiveTag() string {
	if i.Tag == "" && i.Digest == "" {
		return "latest"
	}
	return i.Tag
}

// UnmarshalJSON reads either a reference string ("nginx:1.25", parsed with
// ParseImage) or an object with registry, repository, tag and digest (then
// normalised as ParseImage would).
func (i *Image) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		img, err := ParseImage(s)
		if err != nil {
			return err
		}
		*i = img
		return nil
	}
	type plain Image
	var p plain
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return fmt.Errorf("image: %v", err)
	}
	ref := p.Registry + "/" + p.Repository
	if p.Tag != "" {
		ref += ":" + p.Tag
	}
	if p.Digest != "" {
		ref += "@" + p.Digest
	}
	if p.Registry == "" || p.Repository == "" {
		return fmt.Errorf("image: registry and repository are required (got %q)", ref)
	}
	img, err := ParseImage(ref)
	if err != nil {
		return err
	}
	if h, _ := canonicalName(p.Registry, "x/y"); h != img.Registry {
		return fmt.Errorf("image: registry %q is not a host", p.Registry)
	}
	*i = img
	return nil
}
