package auth

import (
	"testing"
	"time"
)

func TestLRU(t *testing.T) {
	now := time.Unix(1000, 0)
	later := now.Add(time.Minute)
	tests := []struct {
		name string
		run  func(t *testing.T, c *lru[string, int])
	}{
		{"miss", func(t *testing.T, c *lru[string, int]) {
			if _, ok := c.get("a", now); ok {
				t.Fatal("hit on an empty cache")
			}
		}},
		{"hit", func(t *testing.T, c *lru[string, int]) {
			c.put("a", 1, later)
			if v, ok := c.get("a", now); !ok || v != 1 {
				t.Fatalf("get = %v, %v", v, ok)
			}
		}},
		{"expired", func(t *testing.T, c *lru[string, int]) {
			c.put("a", 1, later)
			if _, ok := c.get("a", later); ok {
				t.Fatal("hit at the expiry instant")
			}
			if c.len() != 0 {
				t.Fatal("expired entry not removed")
			}
		}},
		{"update", func(t *testing.T, c *lru[string, int]) {
			c.put("a", 1, later)
			c.put("a", 2, later)
			if v, _ := c.get("a", now); v != 2 || c.len() != 1 {
				t.Fatalf("value %d len %d", v, c.len())
			}
		}},
		{"evicts least recently used", func(t *testing.T, c *lru[string, int]) {
			c.put("a", 1, later)
			c.put("b", 2, later)
			c.put("c", 3, later)
			c.get("a", now) // a is now more recent than b
			c.put("d", 4, later)
			if _, ok := c.get("b", now); ok {
				t.Fatal("b should have been evicted")
			}
			for _, k := range []string{"a", "c", "d"} {
				if _, ok := c.get(k, now); !ok {
					t.Fatalf("%s evicted", k)
				}
			}
			if c.len() != 3 {
				t.Fatalf("len %d, want 3", c.len())
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, newLRU[string, int](3)) })
	}
}

func TestLRUDisabled(t *testing.T) {
	c := newLRU[string, int](0)
	c.put("a", 1, time.Now().Add(time.Hour))
	if _, ok := c.get("a", time.Now()); ok || c.len() != 0 {
		t.Fatal("a disabled cache stored an entry")
	}
}
