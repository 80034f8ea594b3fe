// Package keyed provides a set of mutexes by key, for the in-process
// serialisation the domain uses to save work (one verification of a blob
// for every Range request waiting on it, one admission decision at a time
// per artifact version). Correctness never rests on these locks: what must
// hold across replicas is decided inside the database's transactions. Each
// user says, where it takes one, which it is.
package keyed

import "sync"

// Mutex is a set of mutexes by key, created on demand and dropped when
// nobody holds or waits for them. The zero value is ready to use.
type Mutex struct {
	mu    sync.Mutex
	locks map[string]*entry
}

type entry struct {
	mu   sync.Mutex
	refs int
}

// Lock locks key and returns its unlock function.
func (k *Mutex) Lock(key string) func() {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = make(map[string]*entry)
	}
	e := k.locks[key]
	if e == nil {
		e = &entry{}
		k.locks[key] = e
	}
	e.refs++
	k.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		k.mu.Lock()
		e.refs--
		if e.refs == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}
