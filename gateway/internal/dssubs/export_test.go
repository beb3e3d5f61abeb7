package dssubs

import (
	"slices"
	"sync"
)

// What the package's external tests look at inside the Servers their gateways made.

var servers sync.Map // gateway id → *Server

func init() { testHookNew = func(m *Server) { servers.Store(m.id, m) } }

func serverOf(gateway string) *Server {
	m, ok := servers.Load(gateway)
	if !ok {
		panic("dssubs: no Server of gateway " + gateway)
	}
	return m.(*Server)
}

// Opened reports whether gateway's subscriptions opened their bucket.
func Opened(gateway string) bool {
	m := serverOf(gateway)
	m.initMu.Lock()
	defer m.initMu.Unlock()
	return m.store != nil
}

// Mirrored reports whether gateway's mirror of the subscriptions holds id.
func Mirrored(gateway, id string) bool {
	m := serverOf(gateway)
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mirror[id] != nil
}

// NoMatcher keeps gateway off the log subjects, as if it missed every publish.
func NoMatcher(gateway string) {
	m := serverOf(gateway)
	m.mu.Lock()
	m.noMatcher = true
	m.mu.Unlock()
}

// MatcherFilters are the log subject filters gateway's matcher listens to, sorted.
func MatcherFilters(gateway string) []string {
	m := serverOf(gateway)
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for f := range m.matcher {
		out = append(out, f)
	}
	slices.Sort(out)
	return out
}

// Poke makes gateway look at subscription id now (discover: list its pattern's streams
// too), as its reconciliation does.
func Poke(gateway, id string, discover bool) { serverOf(gateway).poke(id, "", discover) }
