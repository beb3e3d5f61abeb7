package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

type config struct {
	rounds, rtN, appends, conc, large, largeConc int
}

type samples struct{ d []time.Duration }

func (s *samples) pct(q float64) time.Duration {
	if len(s.d) == 0 {
		return 0
	}
	return s.d[min(int(q*float64(len(s.d))), len(s.d)-1)]
}

type scenarioResults struct {
	rt       *samples
	rtCPU    cores
	small    float64 // appends/s, median round
	smallLat *samples
	smallCPU cores
	large    float64 // MB/s, median round
	largeCPU cores
	floor    float64 // appends/s of the floor, median of the rounds paired with small's
	ofFloor  float64 // small / floor, median over the paired rounds
}

func newClient(conc int) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			MaxIdleConns:        conc,
			MaxIdleConnsPerHost: conc,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
		},
		Timeout: 60 * time.Second,
	}
}

const binary = "application/octet-stream"

// create PUTs a binary stream and returns its tail offset.
func create(c *http.Client, url string) (string, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		off, st, err := create1(c, url)
		if st != http.StatusServiceUnavailable || time.Now().After(deadline) {
			return off, err
		}
		time.Sleep(100 * time.Millisecond) // the server is still starting: poll again
	}
}

func create1(c *http.Client, url string) (string, int, error) {
	req, _ := http.NewRequest(http.MethodPut, url, nil)
	req.Header.Set("Content-Type", binary)
	resp, err := c.Do(req)
	if err != nil {
		return "", 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return "", resp.StatusCode, fmt.Errorf("PUT %s: HTTP %d", url, resp.StatusCode)
	}
	return resp.Header.Get("Stream-Next-Offset"), resp.StatusCode, nil
}

// appendBody POSTs body and returns the next offset the server reports.
func appendBody(c *http.Client, url string, body []byte) (string, error) {
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", binary)
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return "", fmt.Errorf("POST %s: HTTP %d", url, resp.StatusCode)
	}
	return resp.Header.Get("Stream-Next-Offset"), nil
}

func runScenarios(name string, s *server, cfg config, floor *server) (*scenarioResults, error) {
	r := &scenarioResults{}
	stamp := time.Now().UnixNano()
	c := newClient(max(cfg.conc, cfg.largeConc) + 2)

	fmt.Fprintf(os.Stderr, "%s: %d append→long-poll round trips...\n", name, cfg.rtN)
	url := fmt.Sprintf("%s/v1/stream/bench-rt-%d", s.base, stamp)
	off, err := create(c, url)
	if err != nil {
		return nil, err
	}
	body := bytes.Repeat([]byte("x"), 100)
	for range 50 { // warm-up
		if off, _, err = roundTrip(c, url, off, body); err != nil {
			return nil, err
		}
	}
	cpu := newCPUMeter(s.Pid())
	r.rt = &samples{}
	for range cfg.rtN {
		var d time.Duration
		if off, d, err = roundTrip(c, url, off, body); err != nil {
			return nil, err
		}
		r.rt.d = append(r.rt.d, d)
	}
	r.rtCPU = cpu.done()
	slices.Sort(r.rt.d)

	fmt.Fprintf(os.Stderr, "%s: %d × %d appends of 100 B at %d...\n", name, cfg.rounds, cfg.appends, cfg.conc)
	surl := fmt.Sprintf("%s/v1/stream/bench-small-%d", s.base, stamp)
	if _, err := create(c, surl); err != nil {
		return nil, err
	}
	if err := r.smallAppends(s, surl, cfg, body, floor); err != nil {
		return nil, err
	}

	fmt.Fprintf(os.Stderr, "%s: %d × %d appends of 1 MB at %d...\n", name, cfg.rounds, cfg.large, cfg.largeConc)
	lurl := fmt.Sprintf("%s/v1/stream/bench-large-%d", s.base, stamp)
	if _, err := create(c, lurl); err != nil {
		return nil, err
	}
	mb := bytes.Repeat([]byte("y"), 1_000_000)
	conns, err := dialAll(lurl, cfg.largeConc)
	if err != nil {
		return nil, err
	}
	defer closeAll(conns)
	var rates []float64
	cpu = newCPUMeter(s.Pid())
	for range cfg.rounds {
		rate, _, err := burst(conns, cfg.large, mb)
		if err != nil {
			return nil, err
		}
		rates = append(rates, rate) // appends/s of 1 MB each = MB/s
	}
	r.largeCPU = cpu.done()
	r.large = median(rates)
	return r, nil
}

// roundTrip parks a long-poll GET at off, appends body once the GET is on the wire, and
// returns the next offset and the time from the append's send to the read's last byte.
func roundTrip(c *http.Client, url, off string, body []byte) (string, time.Duration, error) {
	wrote := make(chan struct{})
	trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { close(wrote) }}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace),
		http.MethodGet, url+"?offset="+off+"&live=long-poll", nil)
	type got struct {
		at   time.Time
		next string
		n    int
		err  error
	}
	done := make(chan got, 1)
	go func() {
		resp, err := c.Do(req)
		if err != nil {
			done <- got{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("long-poll GET: HTTP %d: %.200s", resp.StatusCode, b)
		}
		done <- got{at: time.Now(), next: resp.Header.Get("Stream-Next-Offset"), n: len(b), err: err}
	}()
	select {
	case <-wrote:
	case g := <-done:
		return "", 0, fmt.Errorf("long-poll answered before the append: %v", g.err)
	}
	t := time.Now()
	if _, err := appendBody(c, url, body); err != nil {
		return "", 0, err
	}
	g := <-done
	if g.err != nil {
		return "", 0, g.err
	}
	if g.n != len(body) {
		return "", 0, fmt.Errorf("long-poll read %d bytes, want %d", g.n, len(body))
	}
	return g.next, g.at.Sub(t), nil
}

// smallAppends is the small-append scenario: a warm-up burst, then cfg.rounds bursts of
// cfg.appends appends of body at cfg.conc, each worker on its own keep-alive connection.
// With a floor, each round is followed by the same burst against it, so that the share
// of the floor compares rounds taken moments apart (the machine's load drifts).
func (r *scenarioResults) smallAppends(s *server, url string, cfg config, body []byte, floor *server) error {
	conns, err := dialAll(url, cfg.conc)
	if err != nil {
		return err
	}
	defer closeAll(conns)
	var fconns []*h1conn
	if floor != nil {
		if fconns, err = dialAll(floor.base+"/v1/stream/floor", cfg.conc); err != nil {
			return err
		}
		defer closeAll(fconns)
		if _, _, err := burst(fconns, cfg.appends, body); err != nil {
			return fmt.Errorf("floor: %w", err)
		}
	}
	if _, _, err := burst(conns, cfg.appends, body); err != nil { // warm-up
		return err
	}
	var rates, frates, shares []float64
	r.smallLat = &samples{}
	cpu := newCPUMeter(s.Pid())
	for range cfg.rounds {
		rate, lat, err := burst(conns, cfg.appends, body)
		if err != nil {
			return err
		}
		rates = append(rates, rate)
		r.smallLat.d = append(r.smallLat.d, lat...)
		if floor != nil {
			cpu.pause()
			frate, _, err := burst(fconns, cfg.appends, body)
			if err != nil {
				return fmt.Errorf("floor: %w", err)
			}
			cpu.resume()
			frates = append(frates, frate)
			shares = append(shares, rate/frate)
		}
	}
	r.smallCPU = cpu.done()
	slices.Sort(r.smallLat.d)
	r.small = median(rates)
	r.floor, r.ofFloor = median(frates), median(shares)
	return nil
}

// dialAll prepares n keep-alive connections posting binary appends to url.
func dialAll(url string, n int) ([]*h1conn, error) {
	conns := make([]*h1conn, n)
	for i := range conns {
		c, err := newH1(url, binary)
		if err != nil {
			return nil, err
		}
		conns[i] = c
	}
	return conns, nil
}

func closeAll(conns []*h1conn) {
	for _, c := range conns {
		c.close()
	}
}

// burst sends n appends of body, one worker per connection, and returns appends/s and
// latencies.
func burst(conns []*h1conn, n int, body []byte) (float64, []time.Duration, error) {
	var next atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make([]time.Duration, 0, n/len(conns)+1)
			for next.Add(1) <= int64(n) {
				t := time.Now()
				st, _, err := c.post(body)
				if err == nil && st/100 != 2 {
					err = fmt.Errorf("POST: HTTP %d", st)
				}
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
				mine = append(mine, time.Since(t))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	el := time.Since(start)
	if firstErr != nil {
		return 0, nil, firstErr
	}
	return float64(n) / el.Seconds(), lat, nil
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	sort.Float64s(v)
	return v[len(v)/2]
}
