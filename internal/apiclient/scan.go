package apiclient

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/customs-dev/customs/internal/api"
	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/scan/report"
)

// ScanReport returns the scan report of a manifest digest.
func (c *Client) ScanReport(ctx context.Context, digest string) (*report.Report, error) {
	var r report.Report
	if err := c.do(ctx, http.MethodGet, "/api/v1/scans/"+url.PathEscape(digest), nil, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// SBOM returns the inventory of a manifest digest as an SBOM document in
// format "cyclonedx" or "spdx".
func (c *Client) SBOM(ctx context.Context, digest, format string) ([]byte, error) {
	resp, err := c.send(ctx, http.MethodGet, "/api/v1/scans/"+url.PathEscape(digest)+"/sbom?format="+url.QueryEscape(format), nil, "*/*")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, apperr.Wrap(err, apperr.EUNAVAILABLE, "reading the server's answer failed")
	}
	return b, nil
}

// RequestScan queues a scan of manifest ref (a digest or a tag) of
// repository repo ("project/path").
func (c *Client) RequestScan(ctx context.Context, repo, ref string) (api.ScanRequested, error) {
	var out api.ScanRequested
	project, path, ok := strings.Cut(repo, "/")
	if !ok || path == "" {
		return out, apperr.Errorf(apperr.EINVALID, "repository %q is not of the form <project>/<path>", repo)
	}
	err := c.do(ctx, http.MethodPost, "/api/v1/projects/"+url.PathEscape(project)+"/repositories/"+escapePath(path)+
		"/manifests/"+url.PathEscape(ref)+"/scan", nil, &out)
	return out, err
}

// ScanQueue describes the scan queue (system administrators only).
func (c *Client) ScanQueue(ctx context.Context) (api.ScanQueue, error) {
	var out api.ScanQueue
	err := c.do(ctx, http.MethodGet, "/api/v1/scans", nil, &out)
	return out, err
}

// RepositoryScans lists the tags of repository repo with their reports.
func (c *Client) RepositoryScans(ctx context.Context, repo string) (api.RepositoryScans, error) {
	var out api.RepositoryScans
	project, path, ok := strings.Cut(repo, "/")
	if !ok || path == "" {
		return out, apperr.Errorf(apperr.EINVALID, "repository %q is not of the form <project>/<path>", repo)
	}
	err := c.do(ctx, http.MethodGet, "/api/v1/projects/"+url.PathEscape(project)+"/repositories/"+escapePath(path)+"/scans", nil, &out)
	return out, err
}

// ProjectScans returns a project's scan counts.
func (c *Client) ProjectScans(ctx context.Context, project string) (api.ProjectScans, error) {
	var out api.ProjectScans
	err := c.do(ctx, http.MethodGet, "/api/v1/projects/"+url.PathEscape(project)+"/scans", nil, &out)
	return out, err
}

// SetSBOMReferrer turns storing the SBOMs of a project's scanned images as
// OCI referrers on or off.
func (c *Client) SetSBOMReferrer(ctx context.Context, project string, on bool) (api.Project, error) {
	var p api.Project
	err := c.do(ctx, http.MethodPatch, "/api/v1/projects/"+url.PathEscape(project), api.UpdateProjectRequest{SBOMReferrer: &on}, &p)
	return p, err
}

// SetScanOnPush turns scanning of pushed manifests of a project on or off.
func (c *Client) SetScanOnPush(ctx context.Context, project string, on bool) (api.Project, error) {
	var p api.Project
	err := c.do(ctx, http.MethodPatch, "/api/v1/projects/"+url.PathEscape(project), api.UpdateProjectRequest{ScanOnPush: &on}, &p)
	return p, err
}

// escapePath escapes each segment of a slash-separated path.
func escapePath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return strings.Join(parts, "/")
}
