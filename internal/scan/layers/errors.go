package layers

import (
	"errors"
	"fmt"

	"github.com/customs-dev/customs/internal/apperr"
)

// Kinds of layer failure. Every error this package returns for bad content
// is an *apperr.Error whose cause chain holds one of these, so callers can
// test with errors.Is and show the error's message as the reason.
var (
	// ErrUnsupported: a media type or compression customs cannot read.
	ErrUnsupported = errors.New("unsupported layer")
	// ErrCorrupt: the compressed stream or the tar archive is malformed or
	// truncated.
	ErrCorrupt = errors.New("corrupt layer")
	// ErrTooLarge: the layer went over one of the Limits.
	ErrTooLarge = errors.New("layer over limit")
	// ErrUnsafePath: an entry's name or hardlink target leaves the layer
	// root, or is not a usable path.
	ErrUnsafePath = errors.New("unsafe path in layer")
	// ErrDigestMismatch: the content does not hash to the digest or diffID
	// it was given under.
	ErrDigestMismatch = errors.New("layer digest mismatch")
)

func unsupportedf(format string, args ...any) error {
	return &apperr.Error{Code: apperr.EUNSUPPORTED, Message: fmt.Sprintf(format, args...), Err: ErrUnsupported}
}

func corruptf(cause error, format string, args ...any) error {
	err := ErrCorrupt
	if cause != nil {
		err = fmt.Errorf("%w: %w", ErrCorrupt, cause)
	}
	return &apperr.Error{Code: apperr.EINVALID, Message: fmt.Sprintf(format, args...), Err: err}
}

func tooLargef(format string, args ...any) error {
	return &apperr.Error{Code: apperr.ETOOLARGE, Message: fmt.Sprintf(format, args...), Err: ErrTooLarge}
}

func unsafef(format string, args ...any) error {
	return &apperr.Error{Code: apperr.EINVALID, Message: fmt.Sprintf(format, args...), Err: ErrUnsafePath}
}

func mismatchf(format string, args ...any) error {
	return &apperr.Error{Code: apperr.EINVALID, Message: fmt.Sprintf(format, args...), Err: ErrDigestMismatch}
}

// isLayerError reports whether err already is one of this package's
// content errors (so it is passed on unchanged rather than wrapped again).
func isLayerError(err error) bool {
	return errors.Is(err, ErrUnsupported) || errors.Is(err, ErrCorrupt) || errors.Is(err, ErrTooLarge) ||
		errors.Is(err, ErrUnsafePath) || errors.Is(err, ErrDigestMismatch)
}
