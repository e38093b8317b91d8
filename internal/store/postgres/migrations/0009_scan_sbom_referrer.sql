-- Projects' setting sbomReferrer: after a scan, store the image's SBOM as
-- an OCI referrer of it (package scan, sbomref.go). Off by default.
ALTER TABLE project_scan_settings ADD COLUMN sbom_referrer BOOLEAN NOT NULL DEFAULT FALSE;
