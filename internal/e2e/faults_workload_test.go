package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/holdfast/holdfast/client/stream"
	"github.com/holdfast/holdfast/internal/natstest"
)

// The fault harness's workload (faults_test.go): publishers, durable subscribers (the Go
// client and the JS client) and Counter increments, each through a balancer of its own
// that prefers one gateway and falls back to the other, and a record of every connection
// they made.

// connWatch records one client's connections: when each was upgraded (the server's 101
// came), when one dropped without the client closing it, and attempts that never got
// their 101.
type connWatch struct {
	mu      sync.Mutex
	opens   []time.Time
	drops   []time.Time
	failed  []time.Time
	closing atomic.Bool
}

// dialer is a websocket.Dialer whose connections report to w.
func (w *connWatch) dialer() *websocket.Dialer {
	return &websocket.Dialer{
		HandshakeTimeout: 10 * time.Second,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{Timeout: 2 * time.Second}).DialContext(ctx, network, addr)
			if err != nil {
				w.add(&w.failed)
				return nil, err
			}
			return &watchedConn{Conn: c, w: w}, nil
		},
	}
}

func (w *connWatch) add(list *[]time.Time) {
	w.mu.Lock()
	*list = append(*list, time.Now())
	w.mu.Unlock()
}

// watchedConn tells its watch when the handshake answered 101 and when the connection
// ended: a read error, or the client closing it (after a close frame from the server,
// say) while the client itself is not closing.
type watchedConn struct {
	net.Conn
	w        *connWatch
	mu       sync.Mutex
	head     []byte
	upgraded bool
	ended    bool
}

func (c *watchedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.upgraded && !c.ended && len(c.head) < 12 {
		c.head = append(c.head, p[:min(n, 12-len(c.head))]...)
		if len(c.head) == 12 {
			if bytes.HasPrefix(c.head, []byte("HTTP/1.1 101")) {
				c.upgraded = true
				c.w.add(&c.w.opens)
			} else {
				c.end()
			}
		}
	}
	if err != nil {
		c.end()
	}
	return n, err
}

func (c *watchedConn) Close() error {
	c.mu.Lock()
	c.end()
	c.mu.Unlock()
	return c.Conn.Close()
}

// end records the end of the connection once. c.mu is held.
func (c *watchedConn) end() {
	if c.ended {
		return
	}
	c.ended = true
	switch {
	case !c.upgraded:
		c.w.add(&c.w.failed)
	case !c.w.closing.Load():
		c.w.add(&c.w.drops)
	}
}

// connStats is what happened to one client's connections.
type connStats struct {
	opens, drops, failed []time.Time
}

func (w *connWatch) stats() connStats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return connStats{slices.Clone(w.opens), slices.Clone(w.drops), slices.Clone(w.failed)}
}

// reconnects returns, for each drop, how long the client was without a connection and
// how many attempts failed before the next one opened (-1: none opened).
func (s connStats) reconnects() (waits []time.Duration, failures []int) {
	for _, d := range s.drops {
		i, _ := slices.BinarySearchFunc(s.opens, d, func(a, b time.Time) int { return a.Compare(b) })
		if i == len(s.opens) {
			waits, failures = append(waits, -1), append(failures, -1)
			continue
		}
		n := 0
		for _, f := range s.failed {
			if f.After(d) && f.Before(s.opens[i]) {
				n++
			}
		}
		waits, failures = append(waits, s.opens[i].Sub(d)), append(failures, n)
	}
	return waits, failures
}

// pubResult is the fate of one publish id.
type pubResult struct {
	seq uint64 // the seq it was acknowledged at; 0: never
	err error  // why not
}

// publisher publishes numbered messages {"id":"<name>-<n>"} with the Go client, a few in
// flight. The client makes each publish idempotent and sends it again itself after a
// reconnect or a publish_failed (client/stream/publish.go), so each message is one
// Publish call: calling it again would be a second message.
type publisher struct {
	name  string
	lb    *balancer
	watch *connWatch
	conn  *stream.Conn
	stop  chan struct{}
	wg    sync.WaitGroup
	next  atomic.Int64

	mu   sync.Mutex
	res  map[string]*pubResult
	acks []time.Time
}

const (
	pubInFlight = 2
	pubPace     = 20 * time.Millisecond // between one goroutine's publishes
	// pubTimeout bounds one publish, retries included: far above any failover.
	pubTimeout = 2 * time.Minute
)

func startPublisher(t *testing.T, name, url string, lb *balancer) *publisher {
	t.Helper()
	p := &publisher{name: name, lb: lb, watch: &connWatch{}, stop: make(chan struct{}), res: map[string]*pubResult{}}
	var err error
	p.conn, err = stream.Dial(context.Background(), url, stream.Options{Latest: true, Dialer: p.watch.dialer(), MaxBackoff: time.Second})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	for range pubInFlight {
		p.wg.Add(1)
		go p.loop()
	}
	t.Cleanup(func() {
		select {
		case <-p.stop:
		default:
			close(p.stop)
		}
		p.watch.closing.Store(true)
		_ = p.conn.Close()
		p.wg.Wait()
	})
	return p
}

func (p *publisher) loop() {
	defer p.wg.Done()
	for {
		select {
		case <-p.stop:
			return
		case <-time.After(pubPace):
		}
		p.publish(fmt.Sprintf("%s-%d", p.name, p.next.Add(1)))
	}
}

// publish publishes id once and records its answer.
func (p *publisher) publish(id string) {
	r := &pubResult{}
	p.mu.Lock()
	p.res[id] = r
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), pubTimeout)
	seq, err := p.conn.Publish(ctx, json.RawMessage(`{"id":"`+id+`"}`))
	cancel()
	p.mu.Lock()
	defer p.mu.Unlock()
	r.seq, r.err = seq, err
	if err == nil {
		p.acks = append(p.acks, time.Now())
	}
}

// finish stops publishing and waits until every publish has its answer.
func (p *publisher) finish() {
	close(p.stop)
	p.wg.Wait()
	p.watch.closing.Store(true)
	_ = p.conn.Close()
}

func (p *publisher) results() (map[string]*pubResult, []time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.res, slices.Clone(p.acks)
}

// delivery is one message a subscriber's handler got.
type delivery struct {
	seq uint64
	id  string
}

// subscriber is a durable subscriber (client=<id>) on the Go client.
type subscriber struct {
	name  string
	lb    *balancer
	watch *connWatch
	conn  *stream.Conn

	mu   sync.Mutex
	got  []delivery
	errs []string
}

func startSubscriber(t *testing.T, name, url string, lb *balancer) *subscriber {
	t.Helper()
	s := &subscriber{name: name, lb: lb, watch: &connWatch{}}
	var err error
	s.conn, err = stream.Dial(context.Background(), url, stream.Options{
		Client: name, Dialer: s.watch.dialer(), MaxBackoff: time.Second,
		Handler: func(m stream.Message) {
			var d struct{ ID string }
			_ = json.Unmarshal(m.Data, &d)
			s.mu.Lock()
			s.got = append(s.got, delivery{m.Seq, d.ID})
			s.mu.Unlock()
		},
		OnError: func(e *stream.Error) {
			s.mu.Lock()
			s.errs = append(s.errs, e.Error())
			s.mu.Unlock()
		},
	})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	t.Cleanup(s.close)
	return s
}

func (s *subscriber) deliveries() []delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

func (s *subscriber) problems() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.errs)
}

func (s *subscriber) stats() connStats { return s.watch.stats() }

func (s *subscriber) close() {
	s.watch.closing.Store(true)
	_ = s.conn.Close()
}

// jsSubscriber is a durable subscriber on the JS client (clients/js) in a Node process
// (testdata/jssub.mjs).
type jsSubscriber struct {
	name  string
	lb    *balancer
	cmd   *exec.Cmd
	stdin interface{ Close() error }
	done  chan struct{}

	mu      sync.Mutex
	got     []delivery
	errs    []string
	status  []jsStatus // the client's onStatus reports, in order
	ended   bool
	closing bool
}

type jsStatus struct {
	open bool
	at   time.Time
}

// startJSSubscriber runs the JS client, or returns nil when there is no node.
func startJSSubscriber(t *testing.T, name, url string, lb *balancer) *jsSubscriber {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		return nil
	}
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	script, _ := filepath.Abs(filepath.Join("testdata", "jssub.mjs"))
	s := &jsSubscriber{name: name, lb: lb, done: make(chan struct{})}
	s.cmd = exec.Command(node, "--experimental-websocket", "--no-warnings", script,
		filepath.Join(root, "clients", "js", "src", "index.js"), url, name)
	stdin, err := s.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	s.stdin = stdin
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr logBuffer
	s.cmd.Stderr = &stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var ev struct {
				Ev, ID, Code, Message string
				Seq                   uint64
				T                     int64
			}
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				continue
			}
			s.mu.Lock()
			switch ev.Ev {
			case "msg":
				s.got = append(s.got, delivery{ev.Seq, ev.ID})
			case "open", "closed":
				s.status = append(s.status, jsStatus{ev.Ev == "open", time.UnixMilli(ev.T)})
			case "error":
				s.errs = append(s.errs, ev.Code+": "+ev.Message)
			}
			s.mu.Unlock()
		}
		_ = s.cmd.Wait()
		s.mu.Lock()
		s.ended = true
		s.mu.Unlock()
	}()
	t.Cleanup(func() {
		_ = s.cmd.Process.Kill()
		<-s.done
		if t.Failed() {
			t.Logf("--- %s stderr ---\n%s", name, stderr.String())
		}
	})
	natstest.WaitFor(t, name+" to connect", 15*time.Second, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.status) > 0 || s.ended
	})
	return s
}

func (s *jsSubscriber) deliveries() []delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

func (s *jsSubscriber) problems() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.errs)
	if s.ended && !s.closing {
		out = append(out, "the node process ended")
	}
	return out
}

// stats turns the client's own open/closed reports into a connStats: a close after an
// open is a drop, a close without one a failed attempt.
func (s *jsSubscriber) stats() connStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	var st connStats
	connected := false
	for _, e := range s.status {
		switch {
		case e.open:
			st.opens = append(st.opens, e.at)
		case connected:
			st.drops = append(st.drops, e.at)
		default:
			st.failed = append(st.failed, e.at)
		}
		connected = e.open
	}
	return st
}

func (s *jsSubscriber) close() {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	_ = s.stdin.Close()
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// reader is what the checker needs of either subscriber.
type reader interface {
	deliveries() []delivery
	problems() []string
	stats() connStats
	close()
}

var (
	_ reader = (*subscriber)(nil)
	_ reader = (*jsSubscriber)(nil)
)

// counterDriver POSTs increments of one Counter, in a few loops through each of its
// balancers.
type counterDriver struct {
	name    string
	clients []*http.Client
	stop    chan struct{}
	wg      sync.WaitGroup
	ta      tally
}

func startCounter(c *cluster, name string, lbs []*balancer, loops int) *counterDriver {
	d := &counterDriver{name: name, stop: make(chan struct{})}
	for _, lb := range lbs {
		// Longer than the gateway's request timeout (30 s): the gateway answers first.
		hc := &http.Client{Timeout: 45 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: loops}}
		d.clients = append(d.clients, hc)
		base := "http://" + lb.addr()
		for range loops {
			d.wg.Add(1)
			go func() {
				defer d.wg.Done()
				for {
					select {
					case <-d.stop:
						return
					case <-time.After(pubPace):
					}
					d.ta.add(c.doAt(hc, base, http.MethodPost, name))
				}
			}()
		}
	}
	return d
}

func (d *counterDriver) finish() {
	close(d.stop)
	d.wg.Wait()
	for _, hc := range d.clients {
		hc.CloseIdleConnections()
	}
}
