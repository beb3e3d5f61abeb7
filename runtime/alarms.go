package runtime

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/holdfast/holdfast/internal/kvwatch"
	"github.com/holdfast/holdfast/internal/names"
	"github.com/holdfast/holdfast/internal/wire"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// alarmScheduler wakes objects whose alarm is due while they are not active anywhere. An
// active object fires its own alarm from a timer; this only sends the wake-up, through the
// activation queue, so that whichever host wins the lease fires it. Every host runs one:
// duplicate wake-ups are harmless because the object checks its own stored alarm.
type alarmScheduler struct {
	h     *Host
	mu    sync.Mutex
	due   map[string]int64     // key -> unix ms
	fired map[string]time.Time // key -> last wake-up sent
}

// alarmRetryAfter spaces repeated wake-ups of one object.
const alarmRetryAfter = 2 * time.Second

func startAlarmScheduler(h *Host) *alarmScheduler {
	a := &alarmScheduler{h: h, due: map[string]int64{}, fired: map[string]time.Time{}}
	go a.watch()
	go a.tick()
	return a
}

// watch mirrors the hint bucket until the host stops.
func (a *alarmScheduler) watch() {
	kvwatch.Run(a.h.ctx, a.h.res.Alarms, kvwatch.Config{
		What: "alarm hints", Logger: a.h.log,
		Begin: func() {
			// Every hint comes again: hints removed while no watch ran must go.
			a.mu.Lock()
			clear(a.due)
			a.mu.Unlock()
		},
		Entry: func(e jetstream.KeyValueEntry) {
			a.mu.Lock()
			defer a.mu.Unlock()
			if e.Operation() == jetstream.KeyValuePut {
				ms, _ := strconv.ParseInt(string(e.Value()), 10, 64)
				a.due[e.Key()] = ms
			} else {
				delete(a.due, e.Key())
			}
		},
	})
}

func (a *alarmScheduler) tick() {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-a.h.ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		var wake []string
		a.mu.Lock()
		for key, ms := range a.due {
			if ms > now.UnixMilli() || now.Sub(a.fired[key]) < alarmRetryAfter {
				continue
			}
			a.fired[key] = now
			wake = append(wake, key)
		}
		for key, at := range a.fired {
			if now.Sub(at) > time.Minute {
				delete(a.fired, key)
			}
		}
		a.mu.Unlock()
		for _, key := range wake {
			a.wake(key)
		}
	}
}

// wake sends the wake-up unless this host already has the object active.
func (a *alarmScheduler) wake(key string) {
	class, name, ok := names.SplitKey(key)
	if !ok {
		return
	}
	a.h.mu.Lock()
	_, active := a.h.insts[key]
	a.h.mu.Unlock()
	if active {
		return
	}
	m := nats.NewMsg(wire.ActivateSubject(class))
	m.Header.Set(wire.HdrOp, wire.OpAlarm)
	m.Header.Set(wire.HdrClass, class)
	m.Header.Set(wire.HdrName, name)
	ctx, cancel := context.WithTimeout(a.h.ctx, 5*time.Second)
	defer cancel()
	_, _ = a.h.nc.RequestMsgWithContext(ctx, m)
}
