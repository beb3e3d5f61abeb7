package gateway

import (
	"slices"
)

// What the gateway's external tests look at inside it.

// SubsOpened reports whether g's subscriptions part opened its bucket.
func SubsOpened(g *Gateway) bool {
	m := g.subs
	m.initMu.Lock()
	defer m.initMu.Unlock()
	return m.store != nil
}

// SubsMirrored reports whether g's mirror of the subscriptions holds id.
func SubsMirrored(g *Gateway, id string) bool {
	m := g.subs
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mirror[id] != nil
}

// SubsNoMatcher keeps g off the log subjects, as if it missed every publish.
func SubsNoMatcher(g *Gateway) {
	m := g.subs
	m.mu.Lock()
	m.noMatcher = true
	m.mu.Unlock()
}

// SubsMatcherFilters are the log subject filters g's matcher listens to, sorted.
func SubsMatcherFilters(g *Gateway) []string {
	m := g.subs
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for f := range m.matcher {
		out = append(out, f)
	}
	slices.Sort(out)
	return out
}

// SubsPoke makes g look at subscription id now (discover: list its pattern's streams too),
// as its reconciliation does.
func SubsPoke(g *Gateway, id string, discover bool) { g.subs.poke(id, "", discover) }
