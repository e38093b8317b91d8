package audit

import (
	"context"
	"sync"
	"testing"
)

func TestMemory(t *testing.T) {
	var m Memory
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			action := "artifact.pull"
			if i%2 == 0 {
				action = "artifact.push"
			}
			m.Record(context.Background(), Event{Action: action})
		}(i)
	}
	wg.Wait()
	if n := len(m.Events(func(e Event) bool { return e.Action == "artifact.push" })); n != 10 {
		t.Fatalf("%d pushes, want 10", n)
	}
	if n := len(m.Events(nil)); n != 20 {
		t.Fatalf("%d events, want 20", n)
	}
	if n := len(m.Take()); n != 20 {
		t.Fatalf("Take returned %d, want 20", n)
	}
	if n := len(m.Events(nil)); n != 0 {
		t.Fatalf("%d events after Take", n)
	}
}
