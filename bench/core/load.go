package main

import (
	"context"
	"fmt"
	"github.com/holdfast/holdfast/bench/internal/measure"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// newClient is a keep-alive HTTP client that holds one idle connection per worker, so a
// closed loop never pays for a new TCP connection.
func newClient(conc int) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			MaxIdleConns:        conc,
			MaxIdleConnsPerHost: conc,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
		},
		Timeout: 30 * time.Second,
	}
}

// post sends one POST and reads the whole answer so the connection is reused.
func post(ctx context.Context, c *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d", url, resp.StatusCode)
	}
	return nil
}

// closedLoop runs conc workers, each sending its next request as soon as the previous one
// is answered, for d. url picks worker w's target.
func closedLoop(c *http.Client, conc int, d time.Duration, url func(w int) string) (float64, *measure.Samples) {
	parts := make([]*measure.Samples, conc)
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for w := range conc {
		parts[w] = &measure.Samples{}
		wg.Add(1)
		go func(p *measure.Samples, u string) {
			defer wg.Done()
			for time.Now().Before(deadline) {
				t := time.Now()
				if err := post(context.Background(), c, u); err != nil {
					p.Errors++
					continue
				}
				p.Add(time.Since(t))
			}
		}(parts[w], url(w))
	}
	wg.Wait()
	all := measure.Merge(parts)
	return float64(all.Len()) / time.Since(start).Seconds(), all
}

// paced sends rate requests per second on a fixed schedule (open loop) for d. Latency is
// measured from each request's scheduled time, not from when a worker got to send it, so a
// stall shows up in the percentiles instead of silently lowering the offered load. service
// holds the same requests measured from the actual send.
func paced(c *http.Client, workers, rate int, d time.Duration, url string) (achieved float64, fromSchedule, service *measure.Samples) {
	total := int64(float64(rate) * d.Seconds())
	interval := time.Second / time.Duration(rate)
	sched := make([]*measure.Samples, workers)
	serv := make([]*measure.Samples, workers)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now().Add(10 * time.Millisecond)
	for w := range workers {
		sched[w], serv[w] = &measure.Samples{}, &measure.Samples{}
		wg.Add(1)
		go func(ps, pv *measure.Samples) {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= total {
					return
				}
				at := start.Add(time.Duration(i) * interval)
				if wait := time.Until(at); wait > 0 {
					time.Sleep(wait)
				}
				t := time.Now()
				if err := post(context.Background(), c, url); err != nil {
					ps.Errors++
					continue
				}
				done := time.Now()
				ps.Add(done.Sub(at))
				pv.Add(done.Sub(t))
			}
		}(sched[w], serv[w])
	}
	wg.Wait()
	fromSchedule, service = measure.Merge(sched), measure.Merge(serv)
	return float64(fromSchedule.Len()) / time.Since(start).Seconds(), fromSchedule, service
}

// coldActivations POSTs to names never seen before, conc at a time, for d or until max
// requests: every request activates a new object (lease, log read, epoch record).
func coldActivations(c *http.Client, conc, max int, d time.Duration, base, prefix string) (float64, *measure.Samples) {
	parts := make([]*measure.Samples, conc)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for w := range conc {
		parts[w] = &measure.Samples{}
		wg.Add(1)
		go func(p *measure.Samples) {
			defer wg.Done()
			for time.Now().Before(deadline) {
				i := next.Add(1) - 1
				if i >= int64(max) {
					return
				}
				t := time.Now()
				if err := post(context.Background(), c, fmt.Sprintf("%s/counter/%s-%d", base, prefix, i)); err != nil {
					p.Errors++
					continue
				}
				p.Add(time.Since(t))
			}
		}(parts[w])
	}
	wg.Wait()
	all := measure.Merge(parts)
	return float64(all.Len()) / time.Since(start).Seconds(), all
}
