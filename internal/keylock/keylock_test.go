package keylock

import (
	"sync"
	"sync/atomic"
	"testing"
)

func TestOneHolderPerKeyAndNoLeak(t *testing.T) {
	var s Set
	var inA atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			unlock := s.Lock("a")
			if n := inA.Add(1); n != 1 {
				t.Errorf("%d holders of key a", n)
			}
			inA.Add(-1)
			unlock()
		}()
		go func() { defer wg.Done(); s.Lock("b")() }()
	}
	wg.Wait()
	if len(s.keys) != 0 {
		t.Errorf("%d keys kept after every unlock", len(s.keys))
	}
}
