package severity

import (
	"fmt"
	"math"
	"strings"

	gocvss20 "github.com/pandatix/go-cvss/20"
	gocvss30 "github.com/pandatix/go-cvss/30"
	gocvss31 "github.com/pandatix/go-cvss/31"
	gocvss40 "github.com/pandatix/go-cvss/40"
)

// CVSS versions.
const (
	CVSS20 = "2.0"
	CVSS30 = "3.0"
	CVSS31 = "3.1"
	CVSS40 = "4.0"
)

// CVSS is a scored CVSS vector.
type CVSS struct {
	// Version is one of the CVSS* constants.
	Version string
	// Vector is the vector as given (v2 vectors without surrounding
	// parentheses).
	Vector string
	// Score is the base score computed from the vector (for v4.0, the
	// CVSS-B/BT/BE/BTE score of the metrics present).
	Score float64
	// Level is Score's qualitative rating under Version's scale.
	Level Level
}

// ParseCVSS scores a CVSS vector. The version comes from the vector's
// prefix ("CVSS:4.0/", "CVSS:3.1/", "CVSS:3.0/"); a vector without one is
// read as CVSS v2.0 ("AV:N/AC:L/Au:N/C:P/I:P/A:P", optionally in
// parentheses). Errors name the vector.
func ParseCVSS(vector string) (CVSS, error) {
	vec := strings.TrimSpace(vector)
	c := CVSS{Vector: vec}
	var err error
	switch {
	case strings.HasPrefix(vec, "CVSS:4.0/"):
		c.Version = CVSS40
		var v *gocvss40.CVSS40
		if v, err = gocvss40.ParseVector(vec); err == nil {
			c.Score = v.Score()
		}
	case strings.HasPrefix(vec, "CVSS:3.1/"):
		c.Version = CVSS31
		var v *gocvss31.CVSS31
		if v, err = gocvss31.ParseVector(vec); err == nil {
			c.Score = v.BaseScore()
		}
	case strings.HasPrefix(vec, "CVSS:3.0/"):
		c.Version = CVSS30
		var v *gocvss30.CVSS30
		if v, err = gocvss30.ParseVector(vec); err == nil {
			c.Score = v.BaseScore()
		}
	case strings.HasPrefix(vec, "CVSS:"):
		return CVSS{}, fmt.Errorf("CVSS vector %q: unsupported CVSS version", vector)
	default:
		c.Version = CVSS20
		vec = strings.TrimSuffix(strings.TrimPrefix(vec, "("), ")")
		c.Vector = vec
		var v *gocvss20.CVSS20
		if v, err = gocvss20.ParseVector(vec); err == nil {
			c.Score = v.BaseScore()
		}
	}
	if err != nil {
		return CVSS{}, fmt.Errorf("CVSS vector %q: %w", vector, err)
	}
	if c.Level, err = LevelForScore(c.Version, c.Score); err != nil {
		return CVSS{}, fmt.Errorf("CVSS vector %q: %w", vector, err)
	}
	return c, nil
}

// LevelForScore maps a CVSS score to a level under the qualitative scale
// of its CVSS version:
//
//   - v3.0, v3.1 and v4.0 (their specifications' severity rating scales):
//     0.0 None, 0.1-3.9 Low, 4.0-6.9 Medium, 7.0-8.9 High, 9.0-10.0 Critical;
//   - v2.0, whose specification defines no scale, the scale NVD publishes
//     for it: 0.0-3.9 Low, 4.0-6.9 Medium, 7.0-10.0 High.
//
// A score outside 0-10 (or NaN) or an unknown version is an error.
func LevelForScore(version string, score float64) (Level, error) {
	if math.IsNaN(score) || score < 0 || score > 10 {
		return Unknown, fmt.Errorf("CVSS score %v out of range 0-10", score)
	}
	switch version {
	case CVSS20:
		switch {
		case score >= 7:
			return High, nil
		case score >= 4:
			return Medium, nil
		}
		return Low, nil
	case CVSS30, CVSS31, CVSS40:
		switch {
		case score >= 9:
			return Critical, nil
		case score >= 7:
			return High, nil
		case score >= 4:
			return Medium, nil
		case score > 0:
			return Low, nil
		}
		return None, nil
	}
	return Unknown, fmt.Errorf("unknown CVSS version %q", version)
}
