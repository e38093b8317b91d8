package layers

import (
	"fmt"
)

// Limits bound the work one layer may cause. A layer that goes over a limit
// fails with an error naming the limit (code too_large); nothing it produced
// is kept.
type Limits struct {
	// MaxExpandedBytes caps the size of the uncompressed tar stream.
	MaxExpandedBytes int64
	// MaxRatio caps uncompressed bytes per compressed byte read so far,
	// checked once more than RatioFloorBytes have been expanded (so that a
	// small, very compressible layer is not refused).
	MaxRatio int64
	// RatioFloorBytes is how many uncompressed bytes a layer may produce
	// before MaxRatio is enforced.
	RatioFloorBytes int64
	// MaxEntries caps the number of tar entries (files, directories, links,
	// whiteouts) of one layer.
	MaxEntries int64
}

// DefaultLimits returns limits that let every ordinary image through (the
// largest public images have layers of a few GiB expanding 3-10x) while
// bounding a decompression bomb to seconds of CPU: 16 GiB expanded, 250:1
// after the first 256 MiB, 5,000,000 entries.
func DefaultLimits() Limits {
	return Limits{
		MaxExpandedBytes: 16 << 30,
		MaxRatio:         250,
		RatioFloorBytes:  256 << 20,
		MaxEntries:       5_000_000,
	}
}

// Validate reports the first limit that is not positive.
func (l Limits) Validate() error {
	switch {
	case l.MaxExpandedBytes <= 0:
		return fmt.Errorf("layer limits: MaxExpandedBytes must be positive, got %d", l.MaxExpandedBytes)
	case l.MaxRatio <= 0:
		return fmt.Errorf("layer limits: MaxRatio must be positive, got %d", l.MaxRatio)
	case l.RatioFloorBytes < 0:
		return fmt.Errorf("layer limits: RatioFloorBytes must not be negative, got %d", l.RatioFloorBytes)
	case l.MaxEntries <= 0:
		return fmt.Errorf("layer limits: MaxEntries must be positive, got %d", l.MaxEntries)
	}
	return nil
}
