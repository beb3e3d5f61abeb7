package main

import (
	"slices"
	"time"
)

// samples are the latencies one scenario recorded. Every sample is kept and sorted at the
// end: a run is bounded in time, so this is a few MB at most and the percentiles are exact.
type samples struct {
	d      []time.Duration
	errors int
}

func (s *samples) add(d time.Duration) { s.d = append(s.d, d) }

// merge folds per-worker samples into one.
func merge(parts []*samples) *samples {
	out := &samples{}
	for _, p := range parts {
		out.d = append(out.d, p.d...)
		out.errors += p.errors
	}
	slices.Sort(out.d)
	return out
}

// pct is the q-quantile (0..1) of sorted samples.
func (s *samples) pct(q float64) time.Duration {
	if len(s.d) == 0 {
		return 0
	}
	i := int(q * float64(len(s.d)))
	if i >= len(s.d) {
		i = len(s.d) - 1
	}
	return s.d[i]
}

func (s *samples) max() time.Duration {
	if len(s.d) == 0 {
		return 0
	}
	return s.d[len(s.d)-1]
}
