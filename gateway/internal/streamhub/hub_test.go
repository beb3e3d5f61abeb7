package streamhub

import "testing"

// TestMatchPattern: a retention pattern's "*" is one token, a last ">" one or more.
func TestMatchPattern(t *testing.T) {
	for _, tc := range []struct {
		p, n string
		ok   bool
	}{{"a/*", "a/b", true}, {"a/*", "a/b/c", false}, {"a/>", "a/b/c", true}, {"a/>", "a", false}, {"a", "a", true}, {"*/b", "x/b", true}} {
		if MatchPattern(tc.p, tc.n) != tc.ok {
			t.Errorf("%s %s", tc.p, tc.n)
		}
	}
}
