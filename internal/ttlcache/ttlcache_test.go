package ttlcache

import (
	"runtime"
	"testing"
	"time"
)

func TestEntriesExpireAndTheSizeIsBounded(t *testing.T) {
	c := New[string, int](2, 50*time.Millisecond)
	c.Add("a", 1)
	c.Add("b", 2)
	if v, ok := c.Get("a"); !ok || v != 1 {
		t.Fatalf("a fresh entry: %v %v", v, ok)
	}
	c.Add("c", 3) // "b" is the least recently used
	if _, ok := c.Get("b"); ok {
		t.Error("a third entry in a cache of two kept the least recently used")
	}
	deadline := time.Now().Add(50 * time.Millisecond)
	time.Sleep(time.Until(deadline) + time.Millisecond)
	if _, ok := c.Get("a"); ok {
		t.Error("an entry outlived its TTL")
	}
	if c.Len() != 1 {
		t.Errorf("an expired entry that was read is still held: %d", c.Len())
	}
	c.Add("d", 4)
	c.Remove("d")
	c.Add("e", 5)
	c.Purge()
	if _, ok := c.Get("e"); ok || c.Len() != 0 {
		t.Error("purge kept an entry")
	}
}

func TestCachesLeaveNoGoroutineBehind(t *testing.T) {
	before := runtime.NumGoroutine()
	for range 100 {
		New[string, int](10, time.Second).Add("k", 1)
	}
	if after := runtime.NumGoroutine(); after > before {
		t.Errorf("100 caches left %d goroutines running", after-before)
	}
}
