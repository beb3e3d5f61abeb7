package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/holdfast/holdfast/bench/internal/child"
	"github.com/holdfast/holdfast/internal/natscluster"
	"github.com/nats-io/nats.go"
)

// procs is a multi-process Holdfast on loopback: nats-servers (internal/natscluster),
// object hosts and one gateway, each a child process logging under dir, with their default
// settings: on a cluster of three servers every stream is R3.
type procs struct {
	dir, hfBin, cfgPath, natsURL string
	base                         string // the gateway's http://host:port
	nc                           *nats.Conn
	ns                           *natscluster.Cluster
	gw                           *child.Proc
	hosts                        map[string]*child.Proc
}

// startProcs starts servers nats-servers (1: a single server; 3: a JetStream cluster), a
// host per id in hostIDs and a gateway on config, and returns once the gateway's /healthz
// answers 200. stop ends them all.
func startProcs(hfBin, natsBin, dir, config string, servers int, hostIDs ...string) (p *procs, err error) {
	p = &procs{dir: dir, hfBin: hfBin, cfgPath: filepath.Join(dir, "holdfast.toml"), hosts: map[string]*child.Proc{}}
	defer func() {
		if err != nil {
			p.stop()
		}
	}()
	if err := os.WriteFile(p.cfgPath, []byte(config), 0o644); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	p.ns, err = natscluster.Start(ctx, natscluster.Options{Bin: natsBin, Dir: filepath.Join(dir, "nats"), Servers: servers})
	cancel()
	if err != nil {
		return nil, err
	}
	p.natsURL = p.ns.URLs()
	if p.nc, err = p.ns.Connect("holdfast-bench"); err != nil {
		return nil, err
	}
	for _, id := range hostIDs {
		if err := p.startHost(id); err != nil {
			return nil, err
		}
	}
	gwAddr, err := child.FreeAddr()
	if err != nil {
		return nil, err
	}
	if p.gw, _, err = child.Start("gateway", dir, filepath.Join(dir, "gateway.log"), "holdfast gateway", hfBin,
		"gateway", "--insecure", "--nats", p.natsURL, "--listen", gwAddr, "--config", p.cfgPath); err != nil {
		return nil, err
	}
	p.base = "http://" + gwAddr
	if err := child.WaitHTTP(p.base+"/healthz", http.StatusOK, 30*time.Second); err != nil {
		return nil, err
	}
	return p, nil
}

// startHost starts `holdfast objects --host-id id` and waits for its ready line.
func (p *procs) startHost(id string) error {
	h, _, err := child.Start(id, p.dir, filepath.Join(p.dir, id+".log"), "holdfast objects host", p.hfBin,
		"objects", "--insecure", "--nats", p.natsURL, "--host-id", id, "--config", p.cfgPath)
	if err != nil {
		return fmt.Errorf("host %s: %w", id, err)
	}
	p.hosts[id] = h
	return nil
}

func (p *procs) stop() {
	if p.gw != nil {
		p.gw.Stop()
	}
	for _, h := range p.hosts {
		h.Stop()
	}
	if p.nc != nil {
		p.nc.Close()
	}
	if p.ns != nil {
		p.ns.Close()
	}
}
