package chat

import (
	"net/http"
	"strconv"
	"time"

	"github.com/holdfast/holdfast/objects"
)

// Rate limits of the original demo: every frame a client sends pushes its IP's next
// allowed time 5 s further, and the client waits once that lies more than 20 s ahead: a
// burst of 5 frames, then one per 5 s. [vars] CHAT_RATE_INTERVAL and CHAT_RATE_WINDOW
// override them (the benchmark sends faster than a human would).
const (
	defaultInterval = 5 * time.Second
	defaultWindow   = 20 * time.Second
	// maxCooldown bounds the wait a room accepts from a limiter's answer.
	maxCooldown = 24 * time.Hour
)

// Limiter is the RateLimiter class: one instance per client IP, shared by every room.
// Like the original's, it keeps nothing in storage: it only cares about the last few
// seconds, and resetting when the object is evicted after [objects] idle_timeout is
// harmless.
//
// Its protocol is the original's: POST when the IP performed an action (a frame), GET
// to only read; either answers, as plain text, the seconds the IP should wait before its
// next action (0 when it may go on). The room asks it in the background and enforces
// the wait itself.
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

func (l *limiter) Fetch(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET, POST")
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use POST (an action) or GET (read)")
		return
	}
	now := l.now()
	if l.next.Before(now) {
		l.next = now
	}
	if r.Method == http.MethodPost {
		l.next = l.next.Add(l.interval)
	}
	wait := max(l.next.Sub(now)-l.window, 0)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write(strconv.AppendFloat(nil, wait.Seconds(), 'f', -1, 64))
}

func durationVar(st objects.State, name string, def time.Duration) time.Duration {
	if v, ok := st.Var(name); ok {
		if d, err := time.ParseDuration(v); err == nil && d >= 0 {
			return d
		}
	}
	return def
}
