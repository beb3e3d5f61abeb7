package measure

import (
	"slices"
	"time"
)

// Samples are the latencies one scenario recorded. Every sample is kept and sorted at the
// end: a run is bounded in time, so this is a few MB at most and the percentiles are exact.
type Samples struct {
	d      []time.Duration
	Errors int
}

// Add records one latency.
func (s *Samples) Add(d time.Duration) { s.d = append(s.d, d) }

// Len is how many latencies were recorded.
func (s *Samples) Len() int { return len(s.d) }

// Merge folds per-worker samples into one, sorted.
func Merge(parts []*Samples) *Samples {
	out := &Samples{}
	for _, p := range parts {
		out.d = append(out.d, p.d...)
		out.Errors += p.Errors
	}
	slices.Sort(out.d)
	return out
}

// Pct is the q-quantile (0..1) of sorted samples.
func (s *Samples) Pct(q float64) time.Duration {
	if len(s.d) == 0 {
		return 0
	}
	i := int(q * float64(len(s.d)))
	if i >= len(s.d) {
		i = len(s.d) - 1
	}
	return s.d[i]
}

// Max is the largest sample.
func (s *Samples) Max() time.Duration {
	if len(s.d) == 0 {
		return 0
	}
	return s.d[len(s.d)-1]
}

// Of returns samples holding ds, sorted.
func Of(ds []time.Duration) *Samples {
	return &Samples{d: slices.Sorted(slices.Values(ds))}
}

// Clone copies s.
func (s *Samples) Clone() *Samples { return &Samples{d: slices.Clone(s.d), Errors: s.Errors} }
