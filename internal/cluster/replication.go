package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Replication: how many copies JetStream keeps of every stream and bucket Holdfast makes.
//
// Resolve decides it once per process, against the servers the process reaches: by
// default one copy on a single server and three on a cluster of three or more JetStream
// servers. Settings that would lose acknowledged writes when one server is lost are
// refused with a RefusedError that says what to change. Audit then brings Holdfast's
// existing streams to that count, and Stream and KeyValue create every stream and
// bucket (each process's, each object's log) with the same checks.
//
// JetStream does not tell an ordinary client how many servers its cluster has (the meta
// group's size is in the system account's and the monitoring endpoint's reports only; a
// server's INFO lists the client URLs of its route cluster, which may include servers
// without JetStream and is empty under no_advertise). So Resolve asks JetStream itself:
// it creates a small stream with the replicas in question and deletes it (about 65 ms for
// three replicas on loopback). A single server refuses any replicas above one (error
// 10074); a cluster with fewer servers than replicas finds "no suitable peers for
// placement" (10005). The count includes servers that are down: JetStream places a stream
// on every server its cluster has heard from, as long as a quorum of them is up
// (nats-server 2.15's selectPeerGroup; measured with one of three servers stopped), so a
// process that starts while one server is down still finds three.

// Policy is what the operator asked for.
type Policy struct {
	// Replicas of every stream and bucket; 0 decides by the cluster: 1 on a single
	// server, 3 on three or more JetStream servers (2 on two).
	Replicas int
	// AllowSingleReplica accepts Replicas 1 on a cluster of several JetStream servers,
	// where losing one server loses acknowledged writes.
	AllowSingleReplica bool
}

// Placement is what Resolve decided.
type Placement struct {
	// Replicas of every stream and bucket.
	Replicas int
	// Servers is how many JetStream servers Resolve found: 1, 2, or 3 for "three or
	// more"; 0 when it did not need to know.
	Servers int
}

// ErrRefused is what every RefusedError is (errors.Is): settings that would lose
// acknowledged writes, or that JetStream cannot keep. Starting again does not help.
var ErrRefused = errors.New("cluster: replication refused")

// RefusedError says what is wrong and what to change.
type RefusedError struct {
	Problem string
	Fix     string
}

func (e *RefusedError) Error() string { return e.Problem + ": " + e.Fix }

func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

// ProbeStream is the name of Resolve's short-lived probe stream. It is one fixed name, not
// one per process, so that least-privilege NATS permissions (deploy/nats/permissions.conf)
// can allow deleting exactly this stream and no other: permissions match whole subject
// tokens, never a name's prefix. Processes starting together may probe at once: a create
// of a probe that already exists with the same configuration succeeds (JetStream's create
// is idempotent), and deleting one already deleted is not an error.
const ProbeStream = "HF_PROBE"

// probeTimeout bounds one probe.
const probeTimeout = 5 * time.Second

// JetStream's refusals that Resolve tells apart.
const (
	errCodeNoPeers              = 10005 // "no suitable peers for placement[, peer offline, ...]"
	errCodeReplicasNotClustered = 10074 // "replicas > 1 not supported in non-clustered mode"
)

// Resolve decides the replicas for p against the JetStream that js reaches. A
// RefusedError is final; any other error (JetStream not reachable yet, or not yet heard
// from every server of its cluster) may pass when tried again.
func Resolve(ctx context.Context, js jetstream.JetStream, p Policy) (Placement, error) {
	switch {
	case p.Replicas < 0 || p.Replicas > 5:
		return Placement{}, &RefusedError{fmt.Sprintf("replicas %d", p.Replicas), "JetStream keeps 1 to 5 copies of a stream; pass --replicas 3 on a cluster, 1 on a single server, or leave it out"}
	case p.Replicas == 1 && p.AllowSingleReplica:
		return Placement{Replicas: 1}, nil
	case p.Replicas == 1:
		switch verdict, err := canPlace(ctx, js, 2); verdict {
		case placed, unheard: // an unheard server is a second one
			return Placement{}, singleOnCluster()
		case notClustered, tooFew:
			return Placement{Replicas: 1, Servers: 1}, nil // a single server, or a cluster of one
		default:
			return Placement{}, err
		}
	case p.Replicas > 1:
		switch verdict, err := canPlace(ctx, js, p.Replicas); verdict {
		case placed:
			return Placement{Replicas: p.Replicas, Servers: min(p.Replicas, 3)}, nil
		case notClustered:
			return Placement{}, notClusteredError(p.Replicas)
		case tooFew:
			return Placement{}, &RefusedError{
				fmt.Sprintf("JetStream cannot place %d replicas (%v)", p.Replicas, err),
				fmt.Sprintf("the cluster needs at least %d JetStream servers; pass a lower --replicas", p.Replicas)}
		default:
			return Placement{}, err
		}
	}
	// By the cluster's size.
	switch verdict, err := canPlace(ctx, js, 3); verdict {
	case placed:
		return Placement{Replicas: 3, Servers: 3}, nil
	case notClustered:
		return Placement{Replicas: 1, Servers: 1}, nil
	case tooFew:
	default:
		return Placement{}, err
	}
	switch verdict, err := canPlace(ctx, js, 2); verdict {
	case placed:
		return Placement{Replicas: 2, Servers: 2}, nil
	case tooFew:
		return Placement{Replicas: 1, Servers: 1}, nil
	default:
		return Placement{}, err
	}
}

func singleOnCluster() error {
	return &RefusedError{
		"--replicas 1 on a cluster of several JetStream servers keeps one copy of every stream, so losing one server loses acknowledged writes",
		"leave --replicas out (3 on a cluster of three or more), or pass --replicas 1 --allow-single-replica to accept that"}
}

func notClusteredError(r int) error {
	return &RefusedError{
		fmt.Sprintf("the NATS server is not a JetStream cluster and keeps one copy of a stream, not %d", r),
		"pass --replicas 1 (or leave it out), or point --nats at a JetStream cluster"}
}

// What a probe found.
type verdict int

const (
	failed       verdict = iota // the probe did not get an answer: err says why
	placed                      // JetStream placed the replicas
	notClustered                // a single server: one copy only
	tooFew                      // fewer servers than replicas in the cluster
	unheard                     // some server has not been heard from yet: the size is unknown
)

// canPlace creates, then deletes, a small stream with r replicas, and says what came of
// it. JetStream skips a server it has never heard from since its meta leader started (no
// statistics yet: right after the cluster started, or a server down since) and then
// answers "no suitable peers for placement, peer offline": a reason to wait, never to
// take fewer servers.
func canPlace(ctx context.Context, js jetstream.JetStream, r int) (verdict, error) {
	name := ProbeStream
	// A request sent while the meta group has no leader is never answered: give up on it
	// soon, and let the caller try again.
	cctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	cfg := jetstream.StreamConfig{
		Name:        name,
		Description: "Holdfast's probe of the JetStream cluster's size at start; safe to delete",
		Subjects:    []string{"hf.probe"},
		Storage:     jetstream.FileStorage,
		Replicas:    r,
		MaxMsgs:     1,
	}
	_, err := js.CreateStream(cctx, cfg)
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		// A probe of another process, made with other replicas, or one left behind: it
		// holds nothing, so replace it.
		deleteProbe(ctx, js, name)
		_, err = js.CreateStream(cctx, cfg)
	}
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		// Delete it, also after a create whose answer did not come in time (it may have
		// been made), and again if the delete itself fails.
		defer deleteProbe(ctx, js, name)
	}
	if err == nil {
		return placed, nil
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch {
		case apiErr.ErrorCode == errCodeReplicasNotClustered:
			return notClustered, err
		case apiErr.ErrorCode == errCodeNoPeers && strings.Contains(apiErr.Description, "offline"):
			return unheard, fmt.Errorf("cluster: JetStream has not heard from every server of its cluster yet, so its size is unknown (%s)", apiErr.Description)
		case apiErr.ErrorCode == errCodeNoPeers:
			return tooFew, err
		}
	}
	return failed, fmt.Errorf("cluster: probing the JetStream cluster: %w", err)
}

// deleteProbe deletes a probe stream, trying a few times: a probe left behind is harmless
// (one idle stream) but clutters the account.
func deleteProbe(ctx context.Context, js jetstream.JetStream, name string) {
	ctx = context.WithoutCancel(ctx)
	for attempt := range 3 {
		dctx, cancel := context.WithTimeout(ctx, probeTimeout)
		err := js.DeleteStream(dctx, name)
		cancel()
		if err == nil || errors.Is(err, jetstream.ErrStreamNotFound) {
			return
		}
		time.Sleep(time.Duration(attempt+1) * 100 * time.Millisecond)
	}
}

// Owned reports whether a stream is one of Holdfast's: its shared streams (HF_...), its
// objects' logs (HFL_...) and its buckets' streams (KV_hf_..., KV_HF_...). The probes
// of Resolve are not.
func Owned(stream string) bool {
	switch {
	case stream == ProbeStream:
		return false
	case strings.HasPrefix(stream, "HF"), strings.HasPrefix(stream, "KV_hf_"), strings.HasPrefix(stream, "KV_HF_"):
		return true
	}
	return false
}

// Audit brings every existing stream of Holdfast's (Owned) to replicas: see Conform.
// It reads every stream's info once.
func Audit(ctx context.Context, js jetstream.JetStream, replicas int, log *slog.Logger) error {
	l := js.ListStreams(ctx)
	var infos []*jetstream.StreamInfo
	for info := range l.Info() {
		if Owned(info.Config.Name) {
			infos = append(infos, info)
		}
	}
	if err := l.Err(); err != nil {
		return fmt.Errorf("cluster: listing streams: %w", err)
	}
	for _, info := range infos {
		if err := Conform(ctx, js, info, replicas, log); err != nil {
			return err
		}
	}
	return nil
}

// Conform checks an existing stream against replicas on file storage: fewer replicas
// are scaled up in place (and logged), more are refused (fewer copies than it has would
// be a silent downgrade), and a stream not on file storage is refused (JetStream cannot
// change a stream's storage type).
func Conform(ctx context.Context, js jetstream.JetStream, info *jetstream.StreamInfo, replicas int, log *slog.Logger) error {
	replicas = max(replicas, 1)
	cfg := info.Config
	have := max(cfg.Replicas, 1)
	switch {
	case cfg.Storage != jetstream.FileStorage:
		return &RefusedError{
			fmt.Sprintf("stream %s is kept in %s, and Holdfast keeps its streams on file storage, which JetStream cannot switch a stream to", cfg.Name, cfg.Storage),
			fmt.Sprintf("back it up and delete it (nats stream backup %s; nats stream rm %s), then start again", cfg.Name, cfg.Name)}
	case have > replicas:
		return &RefusedError{
			fmt.Sprintf("stream %s keeps %d replicas and this process is set to %d", cfg.Name, have, replicas),
			fmt.Sprintf("pass --replicas %d, or scale the stream down first (nats stream edit %s --replicas %d)", have, cfg.Name, replicas)}
	case have == replicas:
		return nil
	}
	cfg.Replicas = replicas
	if _, err := ask(ctx, changeAttempt, func(ctx context.Context) (jetstream.Stream, error) { return js.UpdateStream(ctx, cfg) }); err != nil {
		return fmt.Errorf("cluster: scaling stream %s from %d to %d replicas: %w", cfg.Name, have, replicas, placementError(err, replicas))
	}
	if log == nil {
		log = slog.Default()
	}
	log.Info("scaled a stream up in place", "stream", cfg.Name, "from_replicas", have, "to_replicas", replicas)
	// Until the new replicas have caught up, the stream's first publish may go
	// unanswered (measured: one KV put timed out after a scale from 1 to 3 replicas,
	// none after waiting). Waiting is not needed for correctness: past ctx, go on.
	if err := WaitCurrent(ctx, js, cfg.Name); err != nil {
		log.Warn("the stream's new replicas have not caught up yet", "stream", cfg.Name, "err", err)
	}
	return nil
}

// WaitCurrent waits until stream has a leader and every one of its replicas is current
// (caught up with the leader), or ctx ends.
func WaitCurrent(ctx context.Context, js jetstream.JetStream, stream string) error {
	for {
		s, err := js.Stream(ctx, stream)
		if err == nil {
			info := s.CachedInfo()
			if ci := info.Cluster; ci == nil {
				return nil // a single server: nothing to catch up
			} else if ci.Leader != "" && len(ci.Replicas) == max(info.Config.Replicas, 1)-1 {
				current := true
				for _, p := range ci.Replicas {
					current = current && p.Current && !p.Offline
				}
				if current {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: stream %s not current: %w (last error: %v)", stream, ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stream creates stream cfg, or brings the existing one to it: its replicas through
// Conform (never fewer than it has), then the rest of cfg as an update.
func Stream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig, log *slog.Logger) (jetstream.Stream, error) {
	cfg.Replicas = max(cfg.Replicas, 1)
	for {
		s, err := Lookup(ctx, js, cfg.Name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			s, err = ask(ctx, changeAttempt, func(ctx context.Context) (jetstream.Stream, error) { return js.CreateStream(ctx, cfg) })
			if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) && ctx.Err() == nil {
				continue // made meanwhile, with another config: check that one
			}
			if err != nil {
				return nil, placementError(err, cfg.Replicas)
			}
			return s, nil
		}
		if err != nil {
			return nil, err
		}
		if err := Conform(ctx, js, s.CachedInfo(), cfg.Replicas, log); err != nil {
			return nil, err
		}
		return ask(ctx, changeAttempt, func(ctx context.Context) (jetstream.Stream, error) { return js.UpdateStream(ctx, cfg) })
	}
}

// KeyValue creates bucket cfg, or opens the existing one after checking its stream
// through Conform. An existing bucket's other settings are left as they are.
func KeyValue(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig, log *slog.Logger) (jetstream.KeyValue, error) {
	cfg.Replicas = max(cfg.Replicas, 1)
	for {
		s, err := Lookup(ctx, js, "KV_"+cfg.Bucket)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			kv, err := ask(ctx, changeAttempt, func(ctx context.Context) (jetstream.KeyValue, error) { return js.CreateKeyValue(ctx, cfg) })
			if errors.Is(err, jetstream.ErrBucketExists) && ctx.Err() == nil {
				continue
			}
			if err != nil {
				return nil, placementError(err, cfg.Replicas)
			}
			return kv, nil
		}
		if err != nil {
			return nil, err
		}
		if err := Conform(ctx, js, s.CachedInfo(), cfg.Replicas, log); err != nil {
			return nil, err
		}
		return ask(ctx, lookupAttempt, func(ctx context.Context) (jetstream.KeyValue, error) { return js.KeyValue(ctx, cfg.Bucket) })
	}
}

// placementError turns a single server's refusal of replicas into a RefusedError.
func placementError(err error, replicas int) error {
	if apiErr := (*jetstream.APIError)(nil); errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeReplicasNotClustered {
		return notClusteredError(replicas)
	}
	return err
}

// How long one JetStream API request may go unanswered before ask sends it again: an
// info request, and a create or update (which the meta group must agree on).
const (
	lookupAttempt = time.Second
	changeAttempt = 5 * time.Second
)

// ask runs one JetStream API request with a deadline of its own, and sends it again while
// it goes unanswered, until ctx ends. A request can go unanswered and stay so: sent to a
// stream whose leader died (JetStream elects another within 4 to 9 s, nats-server's raft
// election timeout), to a meta group electing its leader, or as one of several processes
// creating the same stream at once (seen at a cluster's first start: a gateway's file
// store waited out 30 s twice). One long timeout kept an object's events waiting about
// 5 s past a new leader (fault harness, scenario 3). fn must be safe to repeat: a create
// or update repeated finds the stream made, or made as asked.
func ask[T any](ctx context.Context, attempt time.Duration, fn func(context.Context) (T, error)) (T, error) {
	for {
		actx, cancel := context.WithTimeout(ctx, attempt)
		v, err := fn(actx)
		cancel()
		if err == nil || !errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
			return v, err
		}
	}
}

// Lookup is js.Stream, asked again every second while it goes unanswered (see ask).
func Lookup(ctx context.Context, js jetstream.JetStream, name string) (jetstream.Stream, error) {
	return ask(ctx, lookupAttempt, func(ctx context.Context) (jetstream.Stream, error) { return js.Stream(ctx, name) })
}
