package extract

import (
	"encoding/json"
	"fmt"
)

// resultSchema is the version of LayerResult's JSON form; part of the
// extractor-set version, so a change of form never reads old cache entries.
//
// Schema 2 added Package.Platform: a schema 1 result would give Go
// binaries' packages no platform.
const resultSchema = 2

// LayerResult is what one layer holds, independent of every other layer,
// so it can be cached by the layer's diffID: the packages of each file the
// extractors read, keyed by that file's path, the whiteouts and opaque
// directories that hide lower layers' files, and what could not be read.
// Results an Extractor returns may be shared between callers: read-only.
type LayerResult struct {
	Schema int `json:"schema"`
	// Digests are compressed blob digests verified to expand to this
	// layer's diffID (most recent first, at most maxDigests). A cached
	// result is only used for a blob whose digest is listed, so an image
	// config that lies about a diffID cannot borrow another layer's result.
	Digests []string `json:"digests,omitempty"`
	// Files maps a path (relative to the root, slash-separated) to what
	// was read from the file there.
	Files map[string]*FileResult `json:"files,omitempty"`
	// Whiteouts are paths removed from lower layers, each with everything
	// below it.
	Whiteouts []string `json:"whiteouts,omitempty"`
	// Opaque are directories whose lower-layer content is hidden ("." is
	// the root).
	Opaque []string `json:"opaque,omitempty"`
	// Problems are files that were not read or whose extraction failed;
	// the rest of the layer is still used. At most maxProblems are kept;
	// ProblemsDropped counts the others.
	Problems        []Problem `json:"problems,omitempty"`
	ProblemsDropped int       `json:"problemsDropped,omitempty"`
	Stats           Stats     `json:"stats"`
}

// FileResult is what one file of a layer contributed.
type FileResult struct {
	Packages []Package `json:"packages,omitempty"`
	// Owns lists the files the OS packages of this database or file list
	// installed, as the package manager writes them (usually absolute).
	Owns []string `json:"owns,omitempty"`
	// OSRelease holds the os-release fields of an os-release file.
	OSRelease map[string]string `json:"osRelease,omitempty"`
	// Symlink is the target of a symlink kept because composition resolves
	// it: /etc/os-release and top-level directories (/bin -> usr/bin).
	Symlink string `json:"symlink,omitempty"`
}

// Package is one package as a layer's extractor found it. OS packages
// (Extractor os/dpkg, os/apk, os/rpm) get their ecosystem and PURL at
// composition, from the image's os-release.
type Package struct {
	// Extractor names the osv-scalibr plugin that found the package.
	Extractor string `json:"extractor"`
	Name      string `json:"name"`
	Version   string `json:"version"`
	// Ecosystem and PURL of a language package.
	Ecosystem string `json:"ecosystem,omitempty"`
	PURL      string `json:"purl,omitempty"`
	// PURLType is scalibr's PURL type ("deb", "apk", "rpm", "golang", ...).
	PURLType      string `json:"purlType,omitempty"`
	SourceName    string `json:"sourceName,omitempty"`
	SourceVersion string `json:"sourceVersion,omitempty"`
	Arch          string `json:"arch,omitempty"`
	// Epoch and SourceRPM of an rpm package.
	Epoch     int    `json:"epoch,omitempty"`
	SourceRPM string `json:"sourceRPM,omitempty"`
	// Locations: the file the package was read from (relative to the
	// root), then for a package inside an archive its path in it.
	Locations []string `json:"locations"`
	// Platform is "GOOS/GOARCH" of the Go binary the package was read
	// from (see inventory.Package.Platform); empty for other packages.
	Platform string `json:"platform,omitempty"`
}

// Problem is a file of a layer that could not be used.
type Problem struct {
	Path string `json:"path"`
	// Extractor is the plugin that failed, "" when the file was not read.
	Extractor string `json:"extractor,omitempty"`
	Message   string `json:"message"`
}

// Stats are measurements of one layer read.
type Stats struct {
	Compression     string `json:"compression,omitempty"`
	CompressedBytes int64  `json:"compressedBytes"`
	ExpandedBytes   int64  `json:"expandedBytes"`
	Entries         int64  `json:"entries"`
	// FilesRead counts the files whose content the extractors read, and
	// BytesRead their bytes.
	FilesRead int64 `json:"filesRead"`
	BytesRead int64 `json:"bytesRead"`
}

// Caps on what a layer result keeps of hostile or odd input.
const (
	maxProblems = 100
	maxDigests  = 16
)

func (r *LayerResult) problem(p Problem) {
	if len(r.Problems) >= maxProblems {
		r.ProblemsDropped++
		return
	}
	r.Problems = append(r.Problems, p)
}

// hasDigest reports whether d is one of the verified blob digests.
func (r *LayerResult) hasDigest(d string) bool {
	for _, x := range r.Digests {
		if x == d {
			return true
		}
	}
	return false
}

// addDigest records d as verified, most recent first.
func (r *LayerResult) addDigest(d string) {
	out := []string{d}
	for _, x := range r.Digests {
		if x != d && len(out) < maxDigests {
			out = append(out, x)
		}
	}
	r.Digests = out
}

// Marshal returns the JSON form of r, for a LayerCache.
func (r *LayerResult) Marshal() ([]byte, error) { return json.Marshal(r) }

// UnmarshalLayerResult parses what Marshal wrote; a result of another
// schema is an error.
func UnmarshalLayerResult(b []byte) (*LayerResult, error) {
	var r LayerResult
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("layer result: %w", err)
	}
	if r.Schema != resultSchema {
		return nil, fmt.Errorf("layer result: schema %d, want %d", r.Schema, resultSchema)
	}
	return &r, nil
}
