// Package status reads what runs where from the shared buckets: the live object hosts
// (their host leases, with each one's active object count), the live gateways (their
// presence, with connection counts by transport) and the active objects of a class with
// the host each lives on. It writes nothing; `holdfast status` prints what it reads, as
// text or JSON.
package status

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/holdfast/holdfast/internal/cluster"
	"github.com/holdfast/holdfast/internal/kvwatch"
	"github.com/holdfast/holdfast/internal/names"
	"github.com/holdfast/holdfast/internal/wire"
	"github.com/nats-io/nats.go/jetstream"
)

// Report is the cluster at one moment.
type Report struct {
	Hosts    []wire.HostLease       `json:"hosts"`
	Gateways []wire.GatewayPresence `json:"gateways"`
}

// Object is one active object.
type Object struct {
	Class string `json:"class"`
	Name  string `json:"name"`
	Host  string `json:"host"`
	// Since is when the object was activated on Host.
	Since time.Time `json:"since"`
}

// Objects is the active objects of one class.
type Objects struct {
	Class   string   `json:"class"`
	Objects []Object `json:"objects"`
}

// Read returns the live hosts and gateways.
func Read(ctx context.Context, js jetstream.JetStream) (*Report, error) {
	res, hosts, err := open(ctx, js)
	if err != nil {
		return nil, err
	}
	r := &Report{Hosts: slices.SortedFunc(maps.Values(hosts), func(a, b wire.HostLease) int { return cmp.Compare(a.ID, b.ID) })}
	gws, err := kvwatch.Snapshot(ctx, res.Gateways)
	if err != nil {
		return nil, fmt.Errorf("status: gateways: %w", err)
	}
	for _, e := range gws {
		var p wire.GatewayPresence
		if json.Unmarshal(e.Value(), &p) != nil || p.ID == "" {
			// An older gateway announces only its start time.
			p = wire.GatewayPresence{ID: e.Key()}
		}
		r.Gateways = append(r.Gateways, p)
	}
	slices.SortFunc(r.Gateways, func(a, b wire.GatewayPresence) int { return cmp.Compare(a.ID, b.ID) })
	return r, nil
}

// open binds the shared buckets and reads the live host leases, by host id.
func open(ctx context.Context, js jetstream.JetStream) (*cluster.Resources, map[string]wire.HostLease, error) {
	res, err := cluster.Bind(ctx, js)
	if err != nil {
		return nil, nil, err
	}
	es, err := kvwatch.Snapshot(ctx, res.Hosts)
	if err != nil {
		return nil, nil, fmt.Errorf("status: hosts: %w", err)
	}
	hosts := map[string]wire.HostLease{}
	for _, e := range es {
		var hl wire.HostLease
		if json.Unmarshal(e.Value(), &hl) == nil {
			hosts[e.Key()] = hl
		}
	}
	return res, hosts, nil
}

// ListObjects returns the objects of class active now: those whose lease entry names a
// live host lease epoch (an entry left by a host that died is not active).
func ListObjects(ctx context.Context, js jetstream.JetStream, class string) (*Objects, error) {
	if err := names.ValidateClass(class); err != nil {
		return nil, fmt.Errorf("status: class %q: %w", class, err)
	}
	res, hosts, err := open(ctx, js)
	if err != nil {
		return nil, err
	}
	es, err := kvwatch.Snapshot(ctx, res.Leases, class+".>")
	if err != nil {
		return nil, fmt.Errorf("status: objects: %w", err)
	}
	out := &Objects{Class: class, Objects: []Object{}}
	for _, e := range es {
		var l wire.Lease
		if json.Unmarshal(e.Value(), &l) != nil || !active(l, hosts) {
			continue
		}
		_, name, _ := names.SplitKey(e.Key())
		out.Objects = append(out.Objects, Object{Class: class, Name: name, Host: l.Host, Since: e.Created().UTC()})
	}
	slices.SortFunc(out.Objects, func(a, b Object) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

// active reports whether lease l holds, given the live host leases: its host's lease
// lives with its epoch. A lease without an epoch is an older Holdfast's, with a TTL of
// its own: it holds while it exists.
func active(l wire.Lease, hosts map[string]wire.HostLease) bool {
	if l.Epoch == "" {
		return l.Host != ""
	}
	hl, ok := hosts[l.Host]
	return ok && hl.Epoch == l.Epoch
}

// Owner returns the host owning object (class, name) now, or "" when none does.
func Owner(ctx context.Context, js jetstream.JetStream, class, name string) (string, error) {
	res, err := cluster.Bind(ctx, js)
	if err != nil {
		return "", err
	}
	e, err := res.Leases.Get(ctx, names.Key(class, name))
	if gone(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("status: lease of %s: %w", names.Key(class, name), err)
	}
	var l wire.Lease
	if err := json.Unmarshal(e.Value(), &l); err != nil {
		return "", fmt.Errorf("status: lease of %s: %w", names.Key(class, name), err)
	}
	if l.Epoch == "" {
		return l.Host, nil
	}
	he, err := res.Hosts.Get(ctx, l.Host)
	if gone(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("status: host lease of %s: %w", l.Host, err)
	}
	var hl wire.HostLease
	if json.Unmarshal(he.Value(), &hl) != nil || hl.Epoch != l.Epoch {
		return "", nil
	}
	return l.Host, nil
}

func gone(err error) bool {
	return errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted)
}

// WriteText prints r for people; now dates the ages.
func (r *Report) WriteText(w io.Writer, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	active := 0
	for _, h := range r.Hosts {
		active += h.Active
	}
	fmt.Fprintf(tw, "object hosts: %d live, %d objects active\n", len(r.Hosts), active)
	if len(r.Hosts) > 0 {
		fmt.Fprintln(tw, "  ID\tACTIVE\tCLASSES\tVERSION\tUP")
		for _, h := range r.Hosts {
			fmt.Fprintf(tw, "  %s\t%d\t%s\t%s\t%s\n", h.ID, h.Active, dash(strings.Join(h.Classes, ",")), dash(h.Version), since(h.Started, now))
		}
	}
	fmt.Fprintf(tw, "gateways: %d live\n", len(r.Gateways))
	if len(r.Gateways) > 0 {
		fmt.Fprintln(tw, "  ID\tADDRESS\tCONNECTIONS\tVERSION\tUP")
		for _, g := range r.Gateways {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", g.ID, dash(g.Address), connections(g.Connections), dash(g.Version), since(g.Started, now))
		}
	}
	return tw.Flush()
}

// WriteText prints o for people; now dates the ages.
func (o *Objects) WriteText(w io.Writer, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "%s: %d active\n", o.Class, len(o.Objects))
	if len(o.Objects) > 0 {
		fmt.Fprintln(tw, "  NAME\tHOST\tACTIVE FOR")
		for _, ob := range o.Objects {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", ob.Name, ob.Host, since(ob.Since, now))
		}
	}
	return tw.Flush()
}

// connections prints counts by transport in a fixed order, then any others, with the total.
func connections(c map[string]int) string {
	if c == nil {
		return "-"
	}
	order := []string{wire.ConnObjectSocket, wire.ConnStreamSocket, wire.ConnEventSource, wire.ConnLongPoll, wire.ConnHTTP}
	for _, k := range slices.Sorted(maps.Keys(c)) {
		if !slices.Contains(order, k) {
			order = append(order, k)
		}
	}
	total := 0
	var parts []string
	for _, k := range order {
		total += c[k]
		parts = append(parts, fmt.Sprintf("%s=%d", k, c[k]))
	}
	return fmt.Sprintf("%d (%s)", total, strings.Join(parts, " "))
}

func since(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t).Round(time.Second)
	if d < 0 {
		d = 0
	}
	return d.String()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
