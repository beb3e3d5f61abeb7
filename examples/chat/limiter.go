package chat

import (
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/holdfast/holdfast/objects"
)

// Rate limits of the original demo: every frame pushes the client's next allowed time 5 s
// further, and frames are refused while that lies more than 20 s ahead: a burst of 4,
// then one frame per 5 s. [vars] CHAT_RATE_INTERVAL and CHAT_RATE_WINDOW override them
// (the benchmark sends faster than a human would).
const (
	defaultInterval = 5 * time.Second
	defaultWindow   = 20 * time.Second
)

// Limiter is the RateLimiter class: one instance per client IP, shared by every room.
// Like the original's, it keeps nothing in storage: it only cares about the last few
// seconds, and resetting when the object is evicted after [objects] idle_timeout is
// harmless.
var Limiter = objects.Class{Name: "RateLimiter", New: newLimiter}

type limiter struct {
	interval, window time.Duration
	next             time.Time
	now              func() time.Time
}

func newLimiter(st objects.State) objects.Object {
	return &limiter{
		interval: durationVar(st, "CHAT_RATE_INTERVAL", defaultInterval),
		window:   durationVar(st, "CHAT_RATE_WINDOW", defaultWindow),
		now:      time.Now,
	}
}

// Fetch answers POST: 200 when the caller may send one frame now (and counts it), 429
// with Retry-After when not. A refused frame does not count: in the original it never
// reaches the limiter either.
func (l *limiter) Fetch(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use POST")
		return
	}
	now := l.now()
	next := l.next
	if next.Before(now) {
		next = now
	}
	next = next.Add(l.interval)
	if ahead := next.Sub(now); ahead > l.window {
		wait := ahead - l.window
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		writeError(w, http.StatusTooManyRequests, "rate_limited", errRateLimited)
		return
	}
	l.next = next
	w.WriteHeader(http.StatusOK)
}

func durationVar(st objects.State, name string, def time.Duration) time.Duration {
	if v, ok := st.Var(name); ok {
		if d, err := time.ParseDuration(v); err == nil && d >= 0 {
			return d
		}
	}
	return def
}
