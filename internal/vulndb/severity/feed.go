package severity

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// CVERating is the rating a CVE severity feed gives one CVE.
type CVERating struct {
	// ID is the CVE id ("CVE-2019-14697").
	ID     string
	Rating Rating
}

// nvdMetric is one entry of an NVD cvssMetricV* list. CVSS v2 entries
// carry baseSeverity beside cvssData; later versions inside it.
type nvdMetric struct {
	Source   string `json:"source"`
	Type     string `json:"type"`
	CVSSData struct {
		Version      string   `json:"version"`
		VectorString string   `json:"vectorString"`
		BaseScore    *float64 `json:"baseScore"`
	} `json:"cvssData"`
}

type nvdCVE struct {
	ID      string `json:"id"`
	Metrics struct {
		V40 []nvdMetric `json:"cvssMetricV40"`
		V31 []nvdMetric `json:"cvssMetricV31"`
		V30 []nvdMetric `json:"cvssMetricV30"`
		V2  []nvdMetric `json:"cvssMetricV2"`
	} `json:"metrics"`
}

// ParseNVD reads an NVD CVE API 2.0 response (or a file of them, such as
// the NVD JSON 2.0 feeds): {"vulnerabilities":[{"cve":{"id":…,"metrics":…}}]}.
// It returns a rating for every CVE that has a usable CVSS metric, chosen
// as follows: the Primary metrics (NVD's own analysis) before Secondary
// ones (CNAs'); within each, CVSS v4.0 over v3.1 over v3.0 over v2. A
// metric's score is computed from its vector; a metric whose vector does
// not parse falls back to the baseScore it states, and one with neither is
// skipped.
//
// A document that is not such JSON is an error naming name. Records with
// problems (no id, metrics but none usable) are reported in a joined error
// that names each record; the ratings of the other records are returned
// with it. CVEs without any metric are left out without error (NVD has not
// analysed them yet).
func ParseNVD(name string, data []byte) ([]CVERating, error) {
	var doc struct {
		Vulnerabilities *[]struct {
			CVE *nvdCVE `json:"cve"`
		} `json:"vulnerabilities"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: not an NVD CVE API 2.0 document: %w", name, err)
	}
	if doc.Vulnerabilities == nil {
		return nil, fmt.Errorf("%s: not an NVD CVE API 2.0 document: no vulnerabilities list", name)
	}
	var out []CVERating
	var errs []error
	for i, v := range *doc.Vulnerabilities {
		if v.CVE == nil || v.CVE.ID == "" {
			errs = append(errs, fmt.Errorf("%s: vulnerabilities[%d]: cve.id is missing", name, i))
			continue
		}
		c := v.CVE
		groups := []struct {
			field string
			list  []nvdMetric
		}{{"cvssMetricV40", c.Metrics.V40}, {"cvssMetricV31", c.Metrics.V31}, {"cvssMetricV30", c.Metrics.V30}, {"cvssMetricV2", c.Metrics.V2}}
		total := 0
		for _, g := range groups {
			total += len(g.list)
		}
		var found *Rating
		var problems []string
		for _, primary := range []bool{true, false} {
			for _, g := range groups {
				for _, m := range g.list {
					if (m.Type == "Primary") != primary {
						continue
					}
					r, err := nvdRating(g.field, m)
					if err != nil {
						problems = append(problems, err.Error())
						continue
					}
					if found == nil {
						r.Detail = strings.TrimSpace(fmt.Sprintf("NVD %s %s %s (%s) %s", c.ID, g.field, m.Type, m.Source, r.Detail))
						found = &r
					}
				}
			}
		}
		switch {
		case found != nil:
			out = append(out, CVERating{ID: c.ID, Rating: *found})
		case total > 0:
			errs = append(errs, fmt.Errorf("%s: %s: no usable CVSS metric: %s", name, c.ID, strings.Join(problems, "; ")))
		}
	}
	return out, errors.Join(errs...)
}

// nvdRating rates one NVD metric.
func nvdRating(field string, m nvdMetric) (Rating, error) {
	want := map[string]string{"cvssMetricV40": CVSS40, "cvssMetricV31": CVSS31, "cvssMetricV30": CVSS30, "cvssMetricV2": CVSS20}[field]
	return metricRating(want, m.CVSSData.VectorString, m.CVSSData.BaseScore, field)
}

// metricRating scores a feed metric of CVSS version want: from its vector
// when that parses as version want, else from its stated base score.
func metricRating(want, vector string, baseScore *float64, field string) (Rating, error) {
	c, verr := ParseCVSS(vector)
	if verr == nil && c.Version == want {
		return Rating{Level: c.Level, Score: c.Score, Vector: c.Vector, Source: SourceCVEFeed}, nil
	}
	if verr == nil {
		verr = fmt.Errorf("CVSS vector %q is not CVSS %s", vector, want)
	}
	if baseScore != nil {
		l, err := LevelForScore(want, *baseScore)
		if err == nil {
			return Rating{Level: l, Score: *baseScore, Vector: vector, Source: SourceCVEFeed,
				Detail: fmt.Sprintf("stated base score (%v)", verr)}, nil
		}
		return Rating{}, fmt.Errorf("%s: %v; base score: %w", field, verr, err)
	}
	return Rating{}, fmt.Errorf("%s: %w", field, verr)
}

// cve5Metric is one entry of a CVE JSON 5 metrics list.
type cve5Metric struct {
	V40 *cve5CVSS `json:"cvssV4_0"`
	V31 *cve5CVSS `json:"cvssV3_1"`
	V30 *cve5CVSS `json:"cvssV3_0"`
	V20 *cve5CVSS `json:"cvssV2_0"`
}

type cve5CVSS struct {
	VectorString string   `json:"vectorString"`
	BaseScore    *float64 `json:"baseScore"`
}

type cve5Container struct {
	ProviderMetadata struct {
		ShortName string `json:"shortName"`
	} `json:"providerMetadata"`
	Metrics []cve5Metric `json:"metrics"`
}

// ParseCVE5 reads one CVE JSON 5 record (the CVE List format: cveMetadata
// and containers.cna / containers.adp[]). It returns the record's rating:
// the CNA container's metrics first, then each ADP container's in order
// (such as CISA's); within a container, CVSS v4.0 over v3.1 over v3.0 over
// v2.0. ok is false for a record without a usable metric, and for a
// rejected record. Errors name the file and the record.
func ParseCVE5(name string, data []byte) (r CVERating, ok bool, err error) {
	var doc struct {
		DataType    string `json:"dataType"`
		CVEMetadata *struct {
			CVEID string `json:"cveId"`
			State string `json:"state"`
		} `json:"cveMetadata"`
		Containers struct {
			CNA *cve5Container  `json:"cna"`
			ADP []cve5Container `json:"adp"`
		} `json:"containers"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return CVERating{}, false, fmt.Errorf("%s: not a CVE JSON 5 record: %w", name, err)
	}
	if doc.CVEMetadata == nil || doc.CVEMetadata.CVEID == "" {
		return CVERating{}, false, fmt.Errorf("%s: not a CVE JSON 5 record: cveMetadata.cveId is missing", name)
	}
	id := doc.CVEMetadata.CVEID
	if strings.EqualFold(doc.CVEMetadata.State, "REJECTED") {
		return CVERating{ID: id}, false, nil
	}
	var containers []struct {
		where string
		c     *cve5Container
	}
	if doc.Containers.CNA != nil {
		containers = append(containers, struct {
			where string
			c     *cve5Container
		}{"cna", doc.Containers.CNA})
	}
	for i := range doc.Containers.ADP {
		containers = append(containers, struct {
			where string
			c     *cve5Container
		}{fmt.Sprintf("adp[%d]", i), &doc.Containers.ADP[i]})
	}
	var problems []string
	for _, ct := range containers {
		for _, ver := range []string{CVSS40, CVSS31, CVSS30, CVSS20} {
			for j, m := range ct.c.Metrics {
				c := map[string]*cve5CVSS{CVSS40: m.V40, CVSS31: m.V31, CVSS30: m.V30, CVSS20: m.V20}[ver]
				if c == nil {
					continue
				}
				field := fmt.Sprintf("containers.%s.metrics[%d]", ct.where, j)
				rt, err := metricRating(ver, c.VectorString, c.BaseScore, field)
				if err != nil {
					problems = append(problems, err.Error())
					continue
				}
				who := ct.c.ProviderMetadata.ShortName
				if who == "" {
					who = ct.where
				}
				rt.Detail = strings.TrimSpace(fmt.Sprintf("CVE %s %s CVSS %s (%s) %s", id, field, ver, who, rt.Detail))
				return CVERating{ID: id, Rating: rt}, true, nil
			}
		}
	}
	if len(problems) > 0 {
		return CVERating{ID: id}, false, fmt.Errorf("%s: %s: no usable CVSS metric: %s", name, id, strings.Join(problems, "; "))
	}
	return CVERating{ID: id}, false, nil
}
