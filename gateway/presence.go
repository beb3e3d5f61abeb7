package gateway

import (
	"encoding/json"

	"github.com/holdfast/holdfast/internal/wire"
)

// presence is the value of the gateway's presence key, refreshed at every renewal: who
// it is and how many connections it holds, by transport (holdfast status reads it).
func (g *Gateway) presence() []byte {
	b, _ := json.Marshal(wire.GatewayPresence{
		ID: g.id, Address: g.opts.Address, Version: g.opts.Version, Started: g.started,
		Connections: g.conns.snapshot(),
	})
	return b
}
