// Package cluster owns the JetStream resources Holdfast's processes share: the object log
// stream and the object-lease, host-lease, gateway-presence and alarm buckets. Every
// process ensures them at start, idempotently, so any process can come up first.
//
// It also owns how many copies of every stream and bucket JetStream keeps (replication.go):
// Resolve decides it against the cluster, and every stream and bucket Holdfast makes, here
// or elsewhere, is created or checked through Stream and KeyValue.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/holdfast/holdfast/internal/wire"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Options size the shared resources.
type Options struct {
	// Replicas for streams and buckets, as Resolve decided (0 is 1).
	Replicas int
	// Logger tells of streams scaled up in place; nil is slog.Default().
	Logger *slog.Logger
}

// Resources are handles on the shared streams and buckets.
type Resources struct {
	Objects  jetstream.Stream
	Leases   jetstream.KeyValue
	Hosts    jetstream.KeyValue
	Gateways jetstream.KeyValue
	Alarms   jetstream.KeyValue
}

// Ensure creates or opens every shared resource.
func Ensure(ctx context.Context, js jetstream.JetStream, opts Options) (*Resources, error) {
	r := max(opts.Replicas, 1)
	var res Resources
	var err error
	res.Objects, err = Stream(ctx, js, jetstream.StreamConfig{
		Name:        wire.ObjectStream,
		Description: "Holdfast object logs: one subject per object",
		Subjects:    []string{wire.ObjectSubjectPrefix + ">"},
		Storage:     jetstream.FileStorage,
		Replicas:    r,
		AllowDirect: true,
		// Dedupe window for retried commits (same Nats-Msg-Id).
		Duplicates: 2 * time.Minute,
	}, opts.Logger)
	if err != nil {
		return nil, fmt.Errorf("cluster: object stream: %w", err)
	}
	kv := func(name, desc string, markerTTL time.Duration) (jetstream.KeyValue, error) {
		cfg := jetstream.KeyValueConfig{
			Bucket: name, Description: desc, History: 1,
			Storage: jetstream.FileStorage, Replicas: r, LimitMarkerTTL: markerTTL,
		}
		b, err := KeyValue(ctx, js, cfg, opts.Logger)
		if err != nil {
			return nil, fmt.Errorf("cluster: bucket %s: %w", name, err)
		}
		return b, nil
	}
	// Object leases need no TTL of their own (they live as long as the host lease they
	// name); the bucket keeps per-key TTLs for the purge markers of handed-back leases and
	// for leases written by older versions.
	if res.Leases, err = kv(wire.LeaseBucket, "Holdfast object leases", time.Minute); err != nil {
		return nil, err
	}
	if res.Hosts, err = kv(wire.HostBucket, "Holdfast live object hosts (host leases)", time.Minute); err != nil {
		return nil, err
	}
	if res.Gateways, err = kv(wire.GatewayBucket, "Holdfast live gateways", time.Minute); err != nil {
		return nil, err
	}
	if res.Alarms, err = kv(wire.AlarmBucket, "Holdfast pending object alarms (hints)", 0); err != nil {
		return nil, err
	}
	return &res, nil
}

// Bind opens handles on the shared resources through js without creating or changing
// them: a second connection (the control plane's) uses it after Ensure ran on the first.
func Bind(ctx context.Context, js jetstream.JetStream) (*Resources, error) {
	var res Resources
	var err error
	if res.Objects, err = js.Stream(ctx, wire.ObjectStream); err != nil {
		return nil, fmt.Errorf("cluster: object stream: %w", err)
	}
	for _, b := range []struct {
		name string
		kv   *jetstream.KeyValue
	}{{wire.LeaseBucket, &res.Leases}, {wire.HostBucket, &res.Hosts}, {wire.GatewayBucket, &res.Gateways}, {wire.AlarmBucket, &res.Alarms}} {
		if *b.kv, err = js.KeyValue(ctx, b.name); err != nil {
			return nil, fmt.Errorf("cluster: bucket %s: %w", b.name, err)
		}
	}
	return &res, nil
}

// IsWrongLastSeq reports whether err is JetStream's refusal of a conditional publish: the
// fence that stops a former owner's late writes.
func IsWrongLastSeq(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	return apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant
}

// RenewTTL rewrites a KV key with a fresh per-key TTL, conditional on the key's current
// revision rev, and returns the new revision. kv.Update cannot do this: it drops the TTL,
// and a key renewed with it never expires (nats.go issue 1994).
func RenewTTL(ctx context.Context, js jetstream.JetStream, bucket, key string, val []byte, rev uint64, ttl time.Duration) (uint64, error) {
	m := nats.NewMsg("$KV." + bucket + "." + key)
	m.Data = val
	ack, err := js.PublishMsg(ctx, m, jetstream.WithExpectLastSequencePerSubject(rev), jetstream.WithMsgTTL(ttl))
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}

// DeleteKey places a KV delete marker on key, conditional on the key's revision rev, and
// returns the marker's revision (kv.Delete does not), so that a later purge of the marker
// can be conditional too.
func DeleteKey(ctx context.Context, js jetstream.JetStream, bucket, key string, rev uint64) (uint64, error) {
	m := nats.NewMsg("$KV." + bucket + "." + key)
	m.Header.Set("KV-Operation", "DEL")
	ack, err := js.PublishMsg(ctx, m, jetstream.WithExpectLastSequencePerSubject(rev))
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}
