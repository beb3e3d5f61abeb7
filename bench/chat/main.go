// Command chat benchmarks the chat example (examples/chat) end to end: -clients WebSocket
// clients in -rooms rooms, each sending one message every -interval, with the rooms'
// objects spread over two object hosts. It reports the delivery latency (from a client's
// write to each member's read of the broadcast, the sender's own copy included) and the
// deliveries per second.
//
// Everything runs in one process on loopback: an embedded nats-server with JetStream, two
// object hosts (each on its own NATS connection), one gateway behind a real HTTP server,
// and the clients. The clients share the CPU with the server, so the numbers are for the
// whole system on -procs cores. Each client has its own IP (X-Forwarded-For, which the
// gateway trusts here), and every message passes its RateLimiter as in production; the
// limiter's interval is lowered (-limit-interval) because the benchmark sends faster than
// the demo's one message per 5 s.
//
// Usage, from the module root:
//
//	go run ./bench/chat [-clients 1000] [-rooms 10] [-duration 30s] [-procs 2]
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	goruntime "runtime"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/holdfast/holdfast/bench/internal/measure"
	"github.com/holdfast/holdfast/examples/chat"
	"github.com/holdfast/holdfast/gateway"
	"github.com/holdfast/holdfast/internal/natsembed"
	"github.com/holdfast/holdfast/objects"
	"github.com/holdfast/holdfast/runtime"
)

func main() {
	clients := flag.Int("clients", 1000, "WebSocket clients")
	rooms := flag.Int("rooms", 10, "rooms (clients are spread evenly)")
	interval := flag.Duration("interval", time.Second, "each client sends one message this often")
	duration := flag.Duration("duration", 30*time.Second, "measured time")
	warmup := flag.Duration("warmup", 5*time.Second, "sending before measuring")
	procs := flag.Int("procs", 2, "GOMAXPROCS: cores for the whole system, clients included")
	limitInterval := flag.String("limit-interval", "100ms", "the RateLimiter's CHAT_RATE_INTERVAL")
	target := flag.Duration("target", 20*time.Millisecond, "the p99 target the run is measured against")
	strict := flag.Bool("strict", false, "exit non-zero when p99 misses -target (a miss is otherwise a result, printed, so that `task bench` goes on to the next program)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the measured window here")
	memprofile := flag.String("memprofile", "", "write an allocation profile (whole run) here")
	flag.Parse()
	goruntime.GOMAXPROCS(*procs)
	profile, memProfile = *cpuprofile, *memprofile
	if err := run(config{*clients, *rooms, *interval, *duration, *warmup, *limitInterval, *target, *strict}); err != nil {
		fmt.Fprintln(os.Stderr, "bench/chat:", err)
		os.Exit(1)
	}
}

type config struct {
	clients, rooms     int
	interval, duration time.Duration
	warmup             time.Duration
	limitInterval      string
	target             time.Duration
	strict             bool
}

var profile, memProfile string

var bindings = map[string]string{chat.RoomsBinding: "ChatRoom", chat.LimitersBinding: "RateLimiter"}

func run(cfg config) error {
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	dir, err := os.MkdirTemp("", "holdfast-bench-chat-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	s, err := natsembed.Start(natsembed.Config{StoreDir: dir})
	if err != nil {
		return err
	}
	defer s.Shutdown()

	var hosts []*runtime.Host
	for i := range 2 {
		nc, err := natsembed.Connect(s, fmt.Sprint("bench-host-", i))
		if err != nil {
			return err
		}
		defer nc.Close()
		h, err := runtime.New(ctx, nc, runtime.Options{
			ID:          fmt.Sprint("host-", i),
			Classes:     []objects.Class{chat.Room, chat.Limiter},
			Namespaces:  bindings,
			Vars:        map[string]string{"CHAT_RATE_INTERVAL": cfg.limitInterval},
			IdleTimeout: time.Hour,
			Logger:      quiet,
		})
		if err != nil {
			return err
		}
		defer func() {
			c, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			_ = h.Close(c)
		}()
		hosts = append(hosts, h)
	}
	gnc, err := natsembed.Connect(s, "bench-gateway")
	if err != nil {
		return err
	}
	defer gnc.Close()
	gw, err := gateway.New(gnc, gateway.Options{
		Routes:             []gateway.Route{{Pattern: "/api/", Function: chat.Edge}},
		Namespaces:         bindings,
		TrustedProxyHeader: "X-Forwarded-For",
		Logger:             quiet,
	})
	if err != nil {
		return err
	}
	defer func() {
		c, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_ = gw.Close(c)
	}()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: gw.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	for deadline := time.Now().Add(30 * time.Second); !gw.Ready(); {
		if time.Now().After(deadline) {
			return errors.New("gateway not ready")
		}
		time.Sleep(20 * time.Millisecond)
	}

	b := &bench{cfg: cfg, base: "ws://" + ln.Addr().String()}
	fmt.Printf("connecting %d clients to %d rooms...\n", cfg.clients, cfg.rooms)
	if err := b.connect(); err != nil {
		return err
	}
	defer b.closeAll()
	fmt.Printf("objects active per host: %d and %d (rooms + rate limiters)\n", hosts[0].Active(), hosts[1].Active())

	stop := make(chan struct{})
	var senders sync.WaitGroup
	for _, c := range b.clients {
		senders.Add(1)
		go func() { defer senders.Done(); c.sendLoop(cfg.interval, stop) }()
	}
	time.Sleep(cfg.warmup)
	b.measureFrom.Store(time.Now().UnixNano())
	start := time.Now()
	meter := measure.NewCPUMeter(os.Getpid())
	cpuStart := measure.ProcCPU(os.Getpid())
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	time.Sleep(cfg.duration)
	if profile != "" {
		pprof.StopCPUProfile()
	}
	if memProfile != "" {
		f, err := os.Create(memProfile)
		if err != nil {
			return err
		}
		err = pprof.Lookup("allocs").WriteTo(f, 0)
		f.Close()
		if err != nil {
			return err
		}
	}
	b.measureTo.Store(time.Now().UnixNano())
	elapsed := time.Since(start)
	b.cpu = measure.ProcCPU(os.Getpid()) - cpuStart
	b.cores = meter.String()
	close(stop)
	senders.Wait()
	// Let the last messages of the window arrive before reading the histogram.
	for deadline := time.Now().Add(5 * time.Second); b.pendingDeliveries() > 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	return b.report(elapsed)
}

type bench struct {
	cfg     config
	base    string
	clients []*client

	measureFrom, measureTo atomic.Int64
	hist                   histogram
	sent, delivered        atomic.Int64 // in the window
	errors, closed         atomic.Int64
	cpu                    float64 // CPU seconds this process used in the window
	cores                  string  // this process's and the rest of the machine's cores
}

type client struct {
	b    *bench
	id   int
	conn *websocket.Conn
	wmu  sync.Mutex
	done chan struct{}
}

// connect dials every client, a few at a time, and joins it to its room.
func (b *bench) connect() error {
	b.clients = make([]*client, b.cfg.clients)
	var wg sync.WaitGroup
	errs := make(chan error, b.cfg.clients)
	sem := make(chan struct{}, 32)
	for i := range b.cfg.clients {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := b.dial(i)
			if err != nil {
				errs <- fmt.Errorf("client %d: %w", i, err)
				return
			}
			b.clients[i] = c
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		for _, c := range b.clients {
			if c != nil {
				_ = c.conn.Close()
			}
		}
		return err
	}
	return nil
}

func (b *bench) dial(i int) (*client, error) {
	room := fmt.Sprint("bench-room-", i%b.cfg.rooms)
	ip := fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
	d := websocket.Dialer{HandshakeTimeout: 30 * time.Second}
	conn, _, err := d.Dial(b.base+"/api/room/"+room+"/websocket", http.Header{"X-Forwarded-For": {ip}})
	if err != nil {
		return nil, err
	}
	if err := conn.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `{"name":"u%d"}`, i)); err != nil {
		return nil, err
	}
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	for range 10000 {
		_, m, err := conn.ReadMessage()
		if err != nil {
			return nil, err
		}
		if bytes.Equal(m, []byte(`{"ready":true}`)) {
			_ = conn.SetReadDeadline(time.Time{})
			c := &client{b: b, id: i, conn: conn, done: make(chan struct{})}
			go c.readLoop()
			return c, nil
		}
	}
	return nil, errors.New("no ready frame")
}

func (c *client) sendLoop(interval time.Duration, stop <-chan struct{}) {
	// Spread the clients' sends evenly over the interval.
	t := time.NewTimer(time.Duration(rand.Int64N(int64(interval))))
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-c.done:
			return
		case <-t.C:
		}
		now := time.Now().UnixNano()
		if from, to := c.b.measureFrom.Load(), c.b.measureTo.Load(); from != 0 && now >= from && (to == 0 || now <= to) {
			c.b.sent.Add(1)
		}
		msg := fmt.Appendf(nil, `{"message":"%d"}`, now)
		c.wmu.Lock()
		err := c.conn.WriteMessage(websocket.TextMessage, msg)
		c.wmu.Unlock()
		if err != nil {
			return
		}
		t.Reset(interval)
	}
}

// readLoop records the latency of every message whose send time lies in the window.
func (c *client) readLoop() {
	defer close(c.done)
	marker := []byte(`"message":"`)
	// One buffer for every read: the clients share the cores with the server, so their
	// garbage would be charged to the system under test.
	buf := make([]byte, 0, 4096)
	for {
		_, r, err := c.conn.NextReader()
		if err == nil {
			buf = buf[:0]
			for err == nil && len(buf) < 1<<20 {
				if len(buf) == cap(buf) {
					buf = append(buf, 0)[:len(buf)]
				}
				var n int
				n, err = r.Read(buf[len(buf):cap(buf)])
				buf = buf[:len(buf)+n]
			}
			if errors.Is(err, io.EOF) {
				err = nil
			}
		}
		m := buf
		if err != nil {
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != websocket.CloseNormalClosure {
				c.b.closed.Add(1)
			}
			return
		}
		now := time.Now().UnixNano()
		i := bytes.Index(m, marker)
		if i < 0 {
			if bytes.Contains(m, []byte(`"error"`)) {
				c.b.errors.Add(1)
			}
			continue
		}
		rest := m[i+len(marker):]
		j := bytes.IndexByte(rest, '"')
		if j < 0 {
			continue
		}
		sentAt, err := strconv.ParseInt(string(rest[:j]), 10, 64)
		if err != nil {
			continue
		}
		from, to := c.b.measureFrom.Load(), c.b.measureTo.Load()
		if from == 0 || sentAt < from || to != 0 && sentAt > to {
			continue
		}
		c.b.delivered.Add(1)
		c.b.hist.record(time.Duration(now - sentAt))
	}
}

func (b *bench) pendingDeliveries() int64 {
	perRoom := int64(b.cfg.clients / b.cfg.rooms)
	return b.sent.Load()*perRoom - b.delivered.Load()
}

func (b *bench) closeAll() {
	for _, c := range b.clients {
		c.wmu.Lock()
		_ = c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		c.wmu.Unlock()
		_ = c.conn.Close()
	}
}

func (b *bench) report(elapsed time.Duration) error {
	h := &b.hist
	res := map[string]any{
		"clients":              b.cfg.clients,
		"rooms":                b.cfg.rooms,
		"procs":                goruntime.GOMAXPROCS(0),
		"cpus":                 goruntime.NumCPU(),
		"seconds":              math.Round(elapsed.Seconds()*10) / 10,
		"messages_per_s":       math.Round(float64(b.sent.Load()) / elapsed.Seconds()),
		"deliveries_per_s":     math.Round(float64(b.delivered.Load()) / elapsed.Seconds()),
		"deliveries_missing":   b.pendingDeliveries(),
		"p50_ms":               ms(h.quantile(0.50)),
		"p90_ms":               ms(h.quantile(0.90)),
		"p99_ms":               ms(h.quantile(0.99)),
		"p999_ms":              ms(h.quantile(0.999)),
		"max_ms":               ms(time.Duration(h.max.Load())),
		"error_frames":         b.errors.Load(),
		"sockets_closed_early": b.closed.Load(),
		// CPU per delivery (everything in the process: server and clients) tells runs on
		// a shared machine apart better than latency alone.
		"cpu_us_per_delivery": math.Round(b.cpu/float64(max(b.delivered.Load(), 1))*1e7) / 10,
	}
	out, _ := json.MarshalIndent(res, "", "  ")
	fmt.Println(string(out))
	p99 := h.quantile(0.99)
	fmt.Println(b.cores)
	fmt.Printf("\nchat: %d clients, %d rooms, 2 hosts, GOMAXPROCS=%d: %.0f deliveries/s, p50 %.2f ms, p99 %.2f ms, max %.2f ms (target p99 <= %v)\n",
		b.cfg.clients, b.cfg.rooms, goruntime.GOMAXPROCS(0), res["deliveries_per_s"], ms(h.quantile(0.5)), ms(p99), ms(time.Duration(h.max.Load())), b.cfg.target)
	if p99 > b.cfg.target {
		fmt.Printf("target met: NO (p99 %v over %v)\n", p99, b.cfg.target)
		if b.cfg.strict {
			return fmt.Errorf("p99 %v over the target %v", p99, b.cfg.target)
		}
	} else {
		fmt.Println("target met: yes")
	}
	if b.closed.Load() > 0 || b.errors.Load() > 0 {
		return fmt.Errorf("%d sockets closed early, %d error frames", b.closed.Load(), b.errors.Load())
	}
	return nil
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e4) / 100 }

// histogram counts latencies in 10 µs buckets up to 2 s (the last bucket takes the rest):
// cheap enough to record 100,000 samples a second from many goroutines.
type histogram struct {
	buckets [200000]atomic.Int64
	max     atomic.Int64
	n       atomic.Int64
}

const bucketWidth = 10 * time.Microsecond

func (h *histogram) record(d time.Duration) {
	i := int(d / bucketWidth)
	if i < 0 {
		i = 0
	}
	if i >= len(h.buckets) {
		i = len(h.buckets) - 1
	}
	h.buckets[i].Add(1)
	h.n.Add(1)
	for {
		m := h.max.Load()
		if int64(d) <= m || h.max.CompareAndSwap(m, int64(d)) {
			return
		}
	}
}

func (h *histogram) quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	want := int64(math.Ceil(q * float64(n)))
	var seen int64
	for i := range h.buckets {
		seen += h.buckets[i].Load()
		if seen >= want {
			return time.Duration(i+1) * bucketWidth
		}
	}
	return time.Duration(h.max.Load())
}
