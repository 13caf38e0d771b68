// Package wake wakes every goroutine waiting for news, however many there are: a Signal hands
// out a channel that is closed (and replaced) by the next Notify. A buffered channel of one
// wakes only one of its readers; this wakes them all.
package wake

import "sync"

// Signal broadcasts "something changed" to every waiter. The zero value is ready to use.
type Signal struct {
	mu sync.Mutex
	ch chan struct{} // guarded by mu: closed by the next Notify
}

// C returns a channel closed by the next Notify. Take it before reading the state that the news
// is about, so that a change between the read and the wait is not missed.
func (s *Signal) C() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

// Notify wakes every goroutine waiting on a channel from C.
func (s *Signal) Notify() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
	}
}
