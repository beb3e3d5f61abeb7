package runtime

import (
	"context"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// presence is the set of live gateways, kept from a watch of their TTL'd keys. A socket
// whose gateway is not live is closed in its object's registry.
type presence struct {
	mu   sync.RWMutex
	live map[string]bool
}

func watchPresence(ctx context.Context, kv jetstream.KeyValue, lost func(gw string)) (*presence, error) {
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return nil, err
	}
	p := &presence{live: map[string]bool{}}
	// Wait for the initial values so that activations right after start see every gateway.
	for e := range w.Updates() {
		if e == nil {
			break
		}
		if e.Operation() == jetstream.KeyValuePut {
			p.live[e.Key()] = true
		}
	}
	go func() {
		defer func() { _ = w.Stop() }()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e == nil {
					continue
				}
				p.mu.Lock()
				was := p.live[e.Key()]
				if e.Operation() == jetstream.KeyValuePut {
					p.live[e.Key()] = true
				} else {
					delete(p.live, e.Key())
				}
				p.mu.Unlock()
				if was && e.Operation() != jetstream.KeyValuePut {
					lost(e.Key())
				}
			}
		}
	}()
	return p, nil
}

func (p *presence) isLive(gw string) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.live[gw]
}
