package audit

import (
	"context"
	"sync"
)

// Memory is a Recorder that keeps events in memory, in the order they were
// recorded, with no chain and no persistence: for tests and tools that
// inspect what would be audited. It is safe for concurrent use.
type Memory struct {
	mu     sync.Mutex
	events []Event
}

// Record implements Recorder.
func (m *Memory) Record(_ context.Context, e Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events = append(m.events, e)
}

// Events returns the recorded events for which keep returns true, or all of
// them when keep is nil.
func (m *Memory) Events(keep func(Event) bool) []Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Event
	for _, e := range m.events {
		if keep == nil || keep(e) {
			out = append(out, e)
		}
	}
	return out
}

// Take returns every recorded event and forgets them.
func (m *Memory) Take() []Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := m.events
	m.events = nil
	return out
}
