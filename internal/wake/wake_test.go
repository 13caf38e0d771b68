package wake

import (
	"sync"
	"testing"
	"time"
)

func TestNotifyWakesEveryWaiter(t *testing.T) {
	var s Signal
	var wg sync.WaitGroup
	woke := make(chan int, 3)
	for i := range 3 {
		ch := s.C()
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-ch
			woke <- i
		}()
	}
	s.Notify()
	wg.Wait()
	if len(woke) != 3 {
		t.Fatalf("%d of 3 waiters woke", len(woke))
	}
}

func TestChannelTakenAfterNotifyWaitsForTheNext(t *testing.T) {
	var s Signal
	s.Notify() // nobody waiting: nothing to remember
	ch := s.C()
	select {
	case <-ch:
		t.Fatal("a channel taken after Notify was already closed")
	default:
	}
	s.Notify()
	select {
	case <-ch:
	case <-time.After(time.Second):
		t.Fatal("Notify did not close the channel")
	}
}
