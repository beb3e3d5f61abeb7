package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

type esResult struct {
	streams, open, delivered int
	rssBefore, rss           float64 // MB
	openTime, deliverTime    time.Duration
}

// idleEventSources opens n EventSource connections (raw HTTP/1.1 GETs with
// Accept: text/event-stream, as a browser sends) spread over streams streams, reads
// the holdfast process's RSS once all are open and idle, then appends one message per
// stream and checks that every connection receives it.
func idleEventSources(s *server, n, streams int) (*esResult, error) {
	res := &esResult{streams: streams}
	c := newClient(4)
	stamp := time.Now().UnixNano()
	paths := make([]string, streams)
	for i := range paths {
		paths[i] = fmt.Sprintf("/v1/stream/bench-es-%d-%d", stamp, i)
		if _, err := create(c, s.base+paths[i]); err != nil {
			return nil, err
		}
	}
	u, err := url.Parse(s.base)
	if err != nil {
		return nil, err
	}
	res.rssBefore = rssMB(s.Pid())

	conns := make([]net.Conn, n)
	readers := make([]*bufio.Reader, n)
	defer func() {
		for _, cn := range conns {
			if cn != nil {
				cn.Close()
			}
		}
	}()
	start := time.Now()
	var opened atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	const dialers = 64
	for d := range dialers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := d; i < n; i += dialers {
				cn, err := net.DialTimeout("tcp", u.Host, 10*time.Second)
				if err == nil {
					_, err = fmt.Fprintf(cn, "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n", paths[i%streams], u.Host)
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("connection %d: %w", i, err)
					}
					mu.Unlock()
					if cn != nil {
						cn.Close()
					}
					return
				}
				conns[i], readers[i] = cn, bufio.NewReaderSize(cn, 512)
				opened.Add(1)
			}
		}()
	}
	wg.Wait()
	res.open = int(opened.Load())
	if firstErr != nil {
		return nil, fmt.Errorf("%d of %d opened: %w", res.open, n, firstErr)
	}
	// Every request is on the wire; wait until the server has taken every connection
	// (its RSS stops growing for 2 s in a row, checked every 250 ms, at most 60 s).
	deadline := time.Now().Add(60 * time.Second)
	last, stable := rssMB(s.Pid()), 0
	for stable < 8 && time.Now().Before(deadline) {
		time.Sleep(250 * time.Millisecond)
		cur := rssMB(s.Pid())
		if cur-last < 0.5 {
			stable++
		} else {
			stable = 0
		}
		last = cur
	}
	res.openTime = time.Since(start)
	res.rss = rssMB(s.Pid())

	// One message per stream: every connection must see it.
	start = time.Now()
	var delivered atomic.Int64
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cn, r := conns[i], readers[i]
			_ = cn.SetReadDeadline(time.Now().Add(60 * time.Second))
			for {
				line, err := r.ReadSlice('\n')
				if err != nil && err != bufio.ErrBufferFull {
					return
				}
				if bytes.HasPrefix(line, []byte("data:")) { // the stream held nothing before
					delivered.Add(1)
					return
				}
			}
		}()
	}
	for _, p := range paths {
		if _, err := appendBody(c, s.base+p, []byte("ping")); err != nil {
			return nil, err
		}
	}
	wg.Wait()
	res.deliverTime = time.Since(start)
	res.delivered = int(delivered.Load())
	if res.delivered != n {
		fmt.Fprintf(os.Stderr, "eventsource: only %d of %d connections got the message\n", res.delivered, n)
	}
	return res, nil
}
