package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/natstest"
	"github.com/holdfast/holdfast/objects"
	"github.com/nats-io/nats-server/v2/server"
)

// caller and callee are the test classes of Stub.Go: a caller starts calls from Fetch and
// records each answer in its storage; a callee answers, or holds its answer until the test
// opens its gate.
var (
	callerClass = objects.Class{Name: "Caller", New: newCaller}
	calleeClass = objects.Class{Name: "Callee", New: func(st objects.State) objects.Object { return &callee{st} }}
	callBinds   = map[string]string{"CALLEES": "Callee", "CALLERS": "Caller"}
)

// gates hold a callee's answer: /slow waits until the test closes gates[name].
var gates sync.Map

func gate(name string) chan struct{} {
	ch, _ := gates.LoadOrStore(name, make(chan struct{}))
	return ch.(chan struct{})
}

// doneRuns counts every answer handler run, per caller name, across instances and hosts.
var doneRuns sync.Map

func doneCount(name string) *atomic.Int64 { return callTally(&doneRuns, name) }

type caller struct {
	st      objects.State
	ctorErr error // what Go said when called from New
}

func newCaller(st objects.State) objects.Object {
	c := &caller{st: st}
	if stub, err := st.Namespace("CALLEES").Get("x"); err == nil {
		c.ctorErr = stub.Go(context.Background(), httptest.NewRequest("GET", "/", nil), nil)
	}
	return c
}

// appendKey adds line to the storage value at key.
func appendKey(st objects.State, key, line string) error {
	v, _ := st.Storage().Get(key)
	return st.Storage().Put(key, append(v, line+";"...))
}

func (c *caller) Fetch(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s := c.st.Storage()
	switch r.URL.Path {
	case "/go": // ?target=&path=[&fail=error|panic][&n=]
		ns, target := c.st.Namespace("CALLEES"), q.Get("target")
		if q.Get("self") != "" {
			ns, target = c.st.Namespace("CALLERS"), c.st.Name()
		}
		stub, err := ns.Get(target)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		body := q.Get("body")
		if q.Get("big") != "" {
			body = strings.Repeat("x", maxSubrequestBody+1)
		}
		req := httptest.NewRequest("POST", q.Get("path"), strings.NewReader(body))
		err = stub.Go(r.Context(), req, func(resp *http.Response, err error) error {
			doneCount(c.st.Name()).Add(1)
			line := ""
			if err != nil {
				line = "err:" + err.Error()
			} else {
				b, _ := io.ReadAll(resp.Body)
				line = fmt.Sprintf("%d:%s", resp.StatusCode, b)
			}
			// What the calling event wrote after Go is already there.
			after, _ := s.Get("after")
			if err := appendKey(c.st, "answers", line+"|after="+string(after)); err != nil {
				return err
			}
			switch q.Get("fail") {
			case "error":
				return errors.New("answer refused")
			case "panic":
				panic("answer panicked")
			}
			return nil
		})
		if err != nil {
			http.Error(w, err.Error(), 409)
			return
		}
		// Written after Go, in the same event: the answer must see it.
		if err := s.Put("after", []byte(q.Get("path"))); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		_, _ = w.Write([]byte("started"))
	case "/bench": // ?mode=fetch|go&to=&delay=: one call per event, and one write, as a chat room's
		stub, _ := c.st.Namespace("CALLEES").Get("limiter-" + q.Get("to"))
		req := httptest.NewRequest("POST", "/echo?delay="+q.Get("delay"), nil)
		if q.Get("mode") == "fetch" {
			resp, err := stub.Fetch(r.Context(), req)
			if err != nil {
				http.Error(w, err.Error(), 502)
				return
			}
			resp.Body.Close()
		} else if err := stub.Go(r.Context(), req, nil); err != nil {
			http.Error(w, err.Error(), 502)
			return
		}
		_ = s.Put("last", []byte(q.Get("mode")))
	case "/mark": // a call to itself lands here
		after, _ := s.Get("after")
		_, _ = w.Write([]byte("mark saw " + string(after)))
	case "/ctor":
		_, _ = fmt.Fprint(w, c.ctorErr)
	default:
		a, _ := s.Get("answers")
		_, _ = w.Write(a)
	}
}

type callee struct{ st objects.State }

// slowIn and slowOut count the /slow requests a callee took and answered, per name.
var slowIn, slowOut sync.Map

func callTally(m *sync.Map, name string) *atomic.Int64 {
	n, _ := m.LoadOrStore(name, new(atomic.Int64))
	return n.(*atomic.Int64)
}

func (c *callee) Fetch(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/slow":
		callTally(&slowIn, c.st.Name()).Add(1)
		select {
		case <-gate(c.st.Name()):
		case <-time.After(20 * time.Second):
		}
		callTally(&slowOut, c.st.Name()).Add(1)
		_, _ = w.Write([]byte("slow done"))
	case "/panic":
		panic("callee panicked")
	case "/echo":
		// A delay stands for a callee further away than this process (another host).
		if d, _ := time.ParseDuration(r.URL.Query().Get("delay")); d > 0 {
			time.Sleep(d)
		}
		b, _ := io.ReadAll(r.Body)
		_, _ = w.Write(b)
	}
}

// callHosts starts a host for the callers and one for the callees, so that each host's
// Active counts one side only. The counters and gates are the tests' (not parallel) and start afresh in each.
func callHosts(t *testing.T, s *server.Server, callerOpts Options) (callers, callees *Host) {
	t.Helper()
	for _, m := range []*sync.Map{&gates, &doneRuns, &slowIn, &slowOut} {
		m.Clear()
	}
	callerOpts.Classes = []objects.Class{callerClass}
	callerOpts.Namespaces = callBinds
	callers = startHost(t, s, callerOpts)
	callees = startHost(t, s, Options{Classes: []objects.Class{calleeClass}, Namespaces: callBinds})
	return callers, callees
}

func get(t *testing.T, s *server.Server, class, name, path string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := fetch(ctx, newClient(t, s), class, name, "GET", path)
	if err != nil {
		t.Fatal(err)
	}
	return string(m.Data)
}

// TestGoDoesNotBlockTheCaller: while a call is out, the caller answers other requests; the
// answer runs later as an event of the caller, after the calling event, and its writes are
// durable.
func TestGoDoesNotBlockTheCaller(t *testing.T) {
	s := natstest.Server(t)
	callers, _ := callHosts(t, s, Options{})
	if got := get(t, s, "Caller", "c1", "/go?target=slow1&path=/slow"); got != "started" {
		t.Fatalf("Go: %q", got)
	}
	// The callee holds its answer; the caller is free meanwhile.
	for range 3 {
		if got := get(t, s, "Caller", "c1", "/"); got != "" {
			t.Fatalf("answers before the callee answered: %q", got)
		}
	}
	close(gate("slow1"))
	natstest.WaitFor(t, "the answer", 10*time.Second, func() bool {
		return get(t, s, "Caller", "c1", "/") == "200:slow done|after=/slow;"
	})
	// Committed: a new host (the state comes from the log) has it too.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := callers.Close(ctx); err != nil {
		t.Fatal(err)
	}
	startHost(t, s, Options{Classes: []objects.Class{callerClass}, Namespaces: callBinds})
	if got := get(t, s, "Caller", "c1", "/"); got != "200:slow done|after=/slow;" {
		t.Fatalf("after a restart: %q", got)
	}
}

// TestGoAnswersInArrivalOrder: answers are events in the order they come back, not the
// order of the calls.
func TestGoAnswersInArrivalOrder(t *testing.T) {
	s := natstest.Server(t)
	callHosts(t, s, Options{})
	get(t, s, "Caller", "c2", "/go?target=slow2&path=/slow")
	get(t, s, "Caller", "c2", "/go?target=fast2&path=/echo&body=fast")
	natstest.WaitFor(t, "the fast answer", 10*time.Second, func() bool {
		return get(t, s, "Caller", "c2", "/") == "200:fast|after=/echo;"
	})
	close(gate("slow2"))
	natstest.WaitFor(t, "the slow answer", 10*time.Second, func() bool {
		return get(t, s, "Caller", "c2", "/") == "200:fast|after=/echo;200:slow done|after=/echo;"
	})
}

// TestGoErrors: a call that cannot start fails at once and its answer never runs; an
// answer handler that fails or panics has its writes undone; a callee's panic is an
// answer (a 500), not an error.
func TestGoErrors(t *testing.T) {
	s := natstest.Server(t)
	callHosts(t, s, Options{})
	if got := get(t, s, "Caller", "e1", "/go?target=x&path=/echo&big=1"); !strings.Contains(got, "subrequest body over") {
		t.Fatalf("big body: %q", got)
	}
	if got := get(t, s, "Caller", "e1", "/ctor"); !strings.Contains(got, "outside of the object's handlers") {
		t.Fatalf("Go from New: %q", got)
	}
	if n := doneCount("e1").Load(); n != 0 {
		t.Fatalf("%d answers ran for calls that did not start", n)
	}
	for i, q := range []string{"target=p&path=/panic", "target=x&path=/echo&body=undone&fail=error",
		"target=x&path=/echo&body=undone2&fail=panic", "target=x&path=/echo&body=kept"} {
		if got := get(t, s, "Caller", "e3", "/go?"+q); got != "started" {
			t.Fatalf("%s: %q", q, got)
		}
		natstest.WaitFor(t, "the answer", 10*time.Second, func() bool { return doneCount("e3").Load() == int64(i+1) })
	}
	got := get(t, s, "Caller", "e3", "/")
	if strings.Contains(got, "undone") || !strings.Contains(got, "200:kept") || !strings.Contains(got, "500:") {
		t.Fatalf("answers: %q", got)
	}
}

// TestGoTimeoutAndLimit: a call that gets no answer in time gets the error in its answer;
// at most Limits.MaxCalls are out at once.
func TestGoTimeoutAndLimit(t *testing.T) {
	s := natstest.Server(t)
	callHosts(t, s, Options{RequestTimeout: 500 * time.Millisecond, Limits: Limits{MaxCalls: 2}})
	// The callee holds its answers past the caller's request timeout.
	for range 2 {
		if got := get(t, s, "Caller", "e2", "/go?target=held&path=/slow"); got != "started" {
			t.Fatalf("call: %q", got)
		}
	}
	if got := get(t, s, "Caller", "e2", "/go?target=held&path=/slow"); !strings.Contains(got, objects.ErrTooManyCalls.Error()) {
		t.Fatalf("third call out: %q", got)
	}
	natstest.WaitFor(t, "two timeouts", 10*time.Second, func() bool {
		return strings.Count(get(t, s, "Caller", "e2", "/"), "err:objclient: the object did not answer in time") == 2
	})
	close(gate("held"))
	// With the answers in, calls may start again.
	if got := get(t, s, "Caller", "e2", "/go?target=held&path=/slow"); got != "started" {
		t.Fatalf("call after the timeouts: %q", got)
	}
}

// TestGoKeepsTheObjectActive: an object with a call out is not evicted for idleness (its
// answer would be lost); once the answer ran, it is.
func TestGoKeepsTheObjectActive(t *testing.T) {
	s := natstest.Server(t)
	callers, _ := callHosts(t, s, Options{IdleTimeout: 30 * time.Millisecond})
	get(t, s, "Caller", "i1", "/go?target=slow3&path=/slow")
	start, evicted := time.Now(), false
	natstest.WaitFor(t, "ten idle timeouts", 10*time.Second, func() bool {
		evicted = evicted || callers.Active() == 0
		return time.Since(start) > 300*time.Millisecond
	})
	if evicted {
		t.Fatal("the caller was evicted with a call out")
	}
	close(gate("slow3"))
	natstest.WaitFor(t, "the answer", 10*time.Second, func() bool { return doneCount("i1").Load() == 1 })
	natstest.WaitFor(t, "eviction", 10*time.Second, func() bool { return callers.Active() == 0 })
	if got := get(t, s, "Caller", "i1", "/"); got != "200:slow done|after=/slow;" {
		t.Fatalf("after eviction: %q", got)
	}
}

// TestGoCallerStopsWithCallOut: a caller whose host shuts down while its call is out stops
// at once (the call does not hold it); the callee still ran the request, and the answer,
// which finds nobody, never runs, on that host or the next.
func TestGoCallerStopsWithCallOut(t *testing.T) {
	s := natstest.Server(t)
	callers, _ := callHosts(t, s, Options{})
	get(t, s, "Caller", "s1", "/go?target=slow4&path=/slow")
	natstest.WaitFor(t, "the callee to take the call", 10*time.Second, func() bool {
		return callTally(&slowIn, "slow4").Load() == 1
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := callers.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("closing took %v with a call out", d)
	}
	close(gate("slow4"))
	startHost(t, s, Options{Classes: []objects.Class{callerClass}, Namespaces: callBinds})
	natstest.WaitFor(t, "the callee to answer", 10*time.Second, func() bool {
		return callTally(&slowOut, "slow4").Load() == 1
	})
	if got := get(t, s, "Caller", "s1", "/"); got != "" {
		t.Fatalf("answers after the caller stopped: %q", got)
	}
	if n := doneCount("s1").Load(); n != 0 {
		t.Fatalf("%d answers ran after the caller stopped", n)
	}
}

// TestGoToItself: an object calling itself with Go does not deadlock: the request is
// queued behind the calling event, sees its writes, and the answer comes after it.
func TestGoToItself(t *testing.T) {
	s := natstest.Server(t)
	callHosts(t, s, Options{})
	if got := get(t, s, "Caller", "me", "/go?self=1&path=/mark"); got != "started" {
		t.Fatalf("Go to itself: %q", got)
	}
	natstest.WaitFor(t, "the answer", 10*time.Second, func() bool {
		return get(t, s, "Caller", "me", "/") == "200:mark saw /mark|after=/mark;"
	})
}
