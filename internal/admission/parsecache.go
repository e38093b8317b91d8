package admission

import (
	"sync"

	"github.com/customs-dev/customs/internal/policy"
)

// maxParsedImages bounds the parsed references a Webhook keeps: a cluster
// runs far fewer distinct image references; past the bound the memo starts
// again empty (a cost of one parse per reference, never a wrong answer).
const maxParsedImages = 4096

// parsedImages memoises policy.ParseImage for the references admission
// sees again and again (every Pod of a Deployment, every review of a
// busy cluster): parsing a reference (distribution/reference's regular
// expressions) was a fifth of a warm review. Only successful parses are
// kept; policy.Image is a value of strings, so a kept one is shared safely.
// The zero value is ready; it is safe for concurrent use.
type parsedImages struct {
	mu sync.RWMutex
	m  map[string]policy.Image
}

// parse returns policy.ParseImage(ref), from the memo when ref was parsed
// before.
func (p *parsedImages) parse(ref string) (policy.Image, error) {
	p.mu.RLock()
	img, ok := p.m[ref]
	p.mu.RUnlock()
	if ok {
		return img, nil
	}
	img, err := policy.ParseImage(ref)
	if err != nil {
		return img, err
	}
	p.mu.Lock()
	if p.m == nil || len(p.m) >= maxParsedImages {
		p.m = make(map[string]policy.Image)
	}
	p.m[ref] = img
	p.mu.Unlock()
	return img, nil
}
