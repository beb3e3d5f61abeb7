package runtime

import (
	"context"
	"log/slog"
	"sync"

	"github.com/holdfast/holdfast/internal/kvwatch"
	"github.com/nats-io/nats.go/jetstream"
)

// presence is the set of live gateways, kept from a watch of their TTL'd keys. A socket
// whose gateway is not live is closed in its object's registry.
type presence struct {
	mu   sync.RWMutex
	live map[string]bool
	seen map[string]bool // keys put during a watch's initial pass
}

// watchPresence mirrors the gateway bucket and calls lost for a gateway whose key goes
// (also when it went while no watch ran). It returns once the gateways live now are
// known, so that activations right after start see every one of them.
func watchPresence(ctx context.Context, kv jetstream.KeyValue, log *slog.Logger, lost func(gw string)) (*presence, error) {
	p := &presence{live: map[string]bool{}}
	w, err := kvwatch.Start(ctx, kv, kvwatch.Config{
		What: "gateway presence", Logger: log,
		Begin: func() { p.seen = map[string]bool{} },
		Entry: func(e jetstream.KeyValueEntry) {
			up := e.Operation() == jetstream.KeyValuePut
			if up && p.seen != nil {
				p.seen[e.Key()] = true
			}
			if p.set(e.Key(), up) {
				lost(e.Key())
			}
		},
		Synced: func() {
			var gone []string
			p.mu.RLock()
			for gw := range p.live {
				if !p.seen[gw] {
					gone = append(gone, gw)
				}
			}
			p.mu.RUnlock()
			p.seen = nil
			for _, gw := range gone {
				if p.set(gw, false) {
					lost(gw)
				}
			}
		},
	})
	if err != nil {
		return nil, err
	}
	if err := w.WaitSynced(ctx); err != nil {
		w.Stop()
		return nil, err
	}
	return p, nil
}

// set records whether gw is live and reports whether it just stopped being.
func (p *presence) set(gw string, live bool) (lost bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	was := p.live[gw]
	if live {
		p.live[gw] = true
	} else {
		delete(p.live, gw)
	}
	return was && !live
}

func (p *presence) isLive(gw string) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.live[gw]
}
