package dssubs

// Durable Streams subscriptions: how wakes happen. Every gateway mirrors the bucket (a KV
// watch) and, while at least one subscription exists, joins the queue group hf-ds-subs on
// the stream log subjects (hf.log.Stream.>): one gateway sees each publish and "pokes" the
// subscriptions whose pattern or links match. A poke only says "look": the gateway then
// reads the stream tails from the streams themselves (a core subscriber also sees publishes
// JetStream refused) and moves the subscription on by compare-and-set. Deadlines (lease
// expiry, webhook retry) come from the mirror on every gateway; the CAS picks one winner.
//
// The pokes are at-most-once (core NATS; a gateway that is busy, dying or not yet watching
// drops some). Nothing is lost by it: every gateway also reconciles each subscription
// every dsReconcileEvery (list the streams its pattern matches, read every tail), which
// finds what a dropped poke would have.
//
// Why the matcher has a core queue subscription of its own on the log subjects rather than
// reading the per-stream feeds (gateway/internal/feed) every other reader of a stream uses:
//
//   - it hears appends to many streams at once, and to streams a pattern will match before
//     they exist (a feed is one stream's, started by a reader of that stream, and needs
//     the log to exist), so it would have to open a feed, a JetStream consumer and a ring,
//     per matching stream on every gateway;
//   - only one gateway of the queue group is to hear each publish (the one that pokes),
//     while a feed delivers every message to every gateway that reads the stream;
//   - it needs no message data, order or history: a poke says "look", and the tails are
//     read from the streams' objects (the typed client), which also covers what the core
//     subscription missed, as reconciliation does.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"hash/fnv"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/holdfast/holdfast/builtin/stream/streamapi"
	"github.com/holdfast/holdfast/gateway/internal/streamclient"
	"github.com/holdfast/holdfast/internal/kvwatch"
	"github.com/holdfast/holdfast/internal/names"
	"github.com/holdfast/holdfast/internal/wire"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const (
	dsReconcileEvery  = 30 * time.Second
	dsWebhookTimeout  = 10 * time.Second
	dsMaxWebhookReply = 64 << 10
	dsTailWorkers     = 8  // per step
	dsTailsInFlight   = 64 // per gateway: reconciling many subscriptions stays bounded
	dsQueueGroup      = "hf-ds-subs"
	dsTombstoneGC     = time.Hour
)

// Server is a gateway's part of the subscriptions system.
type Server struct {
	opts       Config
	id         string
	ctx        context.Context
	log        *slog.Logger
	sc         *streamclient.Client
	wg         sync.WaitGroup // the goroutines Run waits for before it returns
	allowLocal bool
	client     *http.Client
	reconcile  time.Duration

	initMu  sync.Mutex
	store   *dsStore
	secrets *dsSecrets

	mu      sync.Mutex
	mirror  map[string]*dsSub
	matcher map[string]*nats.Subscription // by subject filter (matcherFilters)
	runs    map[string]*dsRun
	skipped map[string]map[string]bool // publishes seen while the mirror showed a wake running
	kick    chan struct{}
	tailSem chan struct{}
	// noMatcher (tests) keeps this gateway off the log subjects, as if it missed every
	// publish: what is left to find is reconciliation's.
	noMatcher bool
	closed    bool // Run is ending: no more goroutines (it waits for those that run)
}

// spawn runs f on a goroutine Run waits for, unless closing.
func (m *Server) spawn(f func()) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return false
	}
	m.wg.Add(1) // under m.mu and not closed: Run has not begun its Wait
	go func() {
		defer m.wg.Done()
		f()
	}()
	return true
}

// dsRun coalesces the pokes of one subscription while a step runs.
type dsRun struct {
	streams  map[string]bool
	discover bool
	again    bool
}

// testHookNew, when a test sets it (export_test.go), is told of every Server made.
var testHookNew func(*Server)

// New is a gateway's part of the subscriptions; Run runs it until ctx ends.
func New(ctx context.Context, cfg Config) *Server {
	m := &Server{opts: cfg, id: cfg.Gateway, ctx: ctx, log: cfg.Logger, sc: cfg.Streams, allowLocal: cfg.AllowLocalhost,
		client:    webhookClient(cfg.AllowLocalhost, dsWebhookTimeout),
		reconcile: dsReconcileEvery,
		mirror:    map[string]*dsSub{}, runs: map[string]*dsRun{}, skipped: map[string]map[string]bool{}, kick: make(chan struct{}, 1),
		tailSem: make(chan struct{}, dsTailsInFlight)}
	if testHookNew != nil {
		testHookNew(m)
	}
	return m
}

// open returns the bucket and secrets, opening them on first use.
func (m *Server) open(ctx context.Context) (*dsStore, *dsSecrets, error) {
	m.initMu.Lock()
	defer m.initMu.Unlock()
	if m.store != nil {
		return m.store, m.secrets, nil
	}
	if !m.opts.Cluster.Ready() {
		return nil, nil, errors.New("not connected to NATS JetStream yet")
	}
	st, err := openDSStore(ctx, m.opts.JetStream, m.opts.Replicas, m.log)
	if err != nil {
		return nil, nil, err
	}
	sec, err := st.secrets(ctx)
	if err != nil {
		return nil, nil, err
	}
	m.store, m.secrets = st, sec
	return st, sec, nil
}

// Run is the background part: wait for JetStream, watch the bucket, fire deadlines and
// reconcile, until the context of New ends; it returns once every goroutine it started
// has.
func (m *Server) Run() {
	defer m.wg.Wait()
	defer func() {
		m.mu.Lock()
		m.closed = true
		for _, sub := range m.matcher {
			_ = sub.Unsubscribe()
		}
		m.matcher = nil
		m.mu.Unlock()
	}()
	ctx := m.ctx
	backoff := 100 * time.Millisecond
	var st *dsStore
	for st == nil {
		var err error
		if st, _, err = m.open(ctx); err != nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
		}
	}
	m.spawn(m.schedule)
	m.watch(ctx, st)
}

// watch mirrors the bucket until ctx ends. Each time a watch (re)opens, the values it
// delivers first replace the mirror (entries that vanished while no watch ran are
// dropped).
func (m *Server) watch(ctx context.Context, st *dsStore) {
	var initial map[string]bool
	kvwatch.Run(ctx, st.kv, kvwatch.Config{
		What: "ds subscriptions", Keys: []string{dsSubKey + "*"}, Logger: m.log,
		Begin: func() { initial = map[string]bool{} },
		Synced: func() {
			m.mu.Lock()
			for id := range m.mirror {
				if !initial[id] {
					delete(m.mirror, id)
				}
			}
			m.mu.Unlock()
			initial = nil
			m.syncMatcher()
		},
		Entry: func(e jetstream.KeyValueEntry) {
			id := strings.TrimPrefix(e.Key(), dsSubKey)
			if e.Operation() != jetstream.KeyValuePut {
				m.forget(id)
				return
			}
			var s dsSub
			if json.Unmarshal(e.Value(), &s) == nil {
				if initial != nil {
					initial[id] = true
				}
				m.observe(&s)
			}
		},
	})
}

// observe puts s into the mirror and makes sure the matcher hears of its streams.
func (m *Server) observe(s *dsSub) {
	m.mu.Lock()
	resync := !sameFilters(m.mirror[s.ID], s)
	m.mirror[s.ID] = s
	var skipped map[string]bool
	if !s.inFlight() {
		skipped = m.skipped[s.ID]
		delete(m.skipped, s.ID)
	}
	m.mu.Unlock()
	for p := range skipped {
		m.poke(s.ID, p, false)
	}
	if resync {
		m.syncMatcher()
	}
	m.wakeScheduler()
}

// sameFilters reports whether b needs the same log subjects as a (its pattern and its
// explicit links): most updates (cursors, wakes, leases) change neither.
func sameFilters(a, b *dsSub) bool {
	if a == nil || a.Pattern != b.Pattern {
		return false
	}
	n := 0
	for name, l := range b.Links {
		if l.Explicit {
			if al := a.Links[name]; al == nil || !al.Explicit {
				return false
			}
			n++
		}
	}
	for _, l := range a.Links {
		if l.Explicit {
			n--
		}
	}
	return n == 0
}

func (m *Server) forget(id string) {
	m.mu.Lock()
	delete(m.mirror, id)
	delete(m.skipped, id)
	m.mu.Unlock()
	m.syncMatcher()
}

// maxMatcherFilters bounds the matcher's subscriptions; past it, it takes every stream log.
const maxMatcherFilters = 256

// matcherFilters are the log subjects the subscriptions need to hear of: each pattern's
// filters and each explicit link's own subject, or every stream log past
// maxMatcherFilters. Every gateway computes the same set from the same mirror, so each
// filter's queue group spreads its publishes over them. m.mu is held.
func (m *Server) matcherFilters() map[string]bool {
	prefix := wire.LogSubjectPrefix + streamapi.ClassName + "."
	want := map[string]bool{}
	for _, s := range m.mirror {
		if s.Pattern != "" {
			for _, f := range globSubjects(prefix, s.Pattern) {
				want[f] = true
			}
		}
		for name, l := range s.Links {
			if l.Explicit {
				want[wire.LogSubject(streamapi.ClassName, name)] = true
			}
		}
		if len(want) > maxMatcherFilters {
			return map[string]bool{prefix + ">": true}
		}
	}
	return want
}

// syncMatcher subscribes to the log subjects the subscriptions cover, and only to them:
// a stream nobody subscribed to costs the matcher nothing.
func (m *Server) syncMatcher() {
	m.mu.Lock()
	defer m.mu.Unlock()
	want := map[string]bool{}
	if !m.closed && !m.noMatcher {
		want = m.matcherFilters()
	}
	for f, sub := range m.matcher {
		if !want[f] {
			_ = sub.Unsubscribe()
			delete(m.matcher, f)
		}
	}
	added := false
	for f := range want {
		if m.matcher[f] != nil {
			continue
		}
		sub, err := m.opts.Conn.QueueSubscribe(f, dsQueueGroup, m.onLog)
		if err != nil {
			m.log.Warn("ds subscriptions: cannot subscribe to stream logs", "subject", f, "err", err)
			continue
		}
		// Drops beyond this are found again by reconciliation.
		_ = sub.SetPendingLimits(65536, 64<<20)
		if m.matcher == nil {
			m.matcher = map[string]*nats.Subscription{}
		}
		m.matcher[f] = sub
		added = true
	}
	if added {
		_ = m.opts.Conn.Flush() // the server knows the interest before a PUT answers
	}
}

// onLog is a publish on a stream's log: poke the subscriptions it concerns.
func (m *Server) onLog(msg *nats.Msg) {
	name := strings.ReplaceAll(strings.TrimPrefix(msg.Subject, wire.LogSubjectPrefix+streamapi.ClassName+"."), ".", "/")
	m.mu.Lock()
	var ids []string
	for id, s := range m.mirror {
		if name == s.WakeStream {
			continue // its own wake events must not wake it
		}
		switch {
		case s.Links[name] != nil && s.inFlight():
			// Nothing to do while its wake runs (the wake's end looks at the tails), but
			// the mirror may lag: remember the stream and look when it shows the wake over.
			sk := m.skipped[id]
			if sk == nil {
				sk = map[string]bool{}
				m.skipped[id] = sk
			}
			if len(sk) < dsMaxLinks {
				sk[name] = true
			}
		case s.Links[name] != nil || s.Pattern != "" && globMatch(s.Pattern, name):
			ids = append(ids, id)
		}
	}
	m.mu.Unlock()
	for _, id := range ids {
		m.poke(id, name, false)
	}
}

// poke asks for a step of subscription id, with stream possibly new to it.
func (m *Server) poke(id, stream string, discover bool) {
	m.mu.Lock()
	r := m.runs[id]
	if r != nil {
		if stream != "" && len(r.streams) < dsMaxLinks {
			r.streams[stream] = true
		}
		r.discover = r.discover || discover
		r.again = true
		m.mu.Unlock()
		return
	}
	if m.closed {
		m.mu.Unlock()
		return
	}
	r = &dsRun{streams: map[string]bool{}, discover: discover}
	if stream != "" {
		r.streams[stream] = true
	}
	m.runs[id] = r
	m.wg.Add(1) // under m.mu and not closed: Run has not begun its Wait
	m.mu.Unlock()
	go m.loop(id, r)
}

func (m *Server) loop(id string, r *dsRun) {
	defer m.wg.Done()
	for range 64 { // bounded: a step that keeps being poked yields and is poked again
		m.mu.Lock()
		streams, discover := r.streams, r.discover
		r.streams, r.discover, r.again = map[string]bool{}, false, false
		m.mu.Unlock()
		ctx, cancel := context.WithTimeout(m.ctx, m.opts.RequestTimeout)
		if _, err := m.step(ctx, id, streams, discover); err != nil && m.ctx.Err() == nil {
			m.log.Warn("ds subscription step failed", "subscription", id, "err", err)
		}
		cancel()
		m.mu.Lock()
		if !r.again {
			delete(m.runs, id)
			m.mu.Unlock()
			return
		}
		m.mu.Unlock()
	}
	m.mu.Lock()
	delete(m.runs, id)
	m.mu.Unlock()
	m.wakeScheduler()
}

// step moves one subscription on: link new matching streams, expire its lease, retry its
// webhook, or start a wake when work is pending. It reports whether it started a wake.
func (m *Server) step(ctx context.Context, id string, streams map[string]bool, discover bool) (bool, error) {
	st, sec, err := m.open(ctx)
	if err != nil {
		return false, err
	}
	s, _, err := st.get(ctx, id)
	if err != nil || s == nil {
		return false, err
	}
	// New streams a pattern matches are linked before their first append (cursor 0).
	var add []string
	if s.Pattern != "" {
		for p := range streams {
			if s.Links[p] == nil && p != s.WakeStream && globMatch(s.Pattern, p) {
				add = append(add, p)
			}
		}
		if discover {
			found, _ := m.listMatching(ctx, s.Pattern, dsMaxLinks)
			for _, p := range found {
				if s.Links[p] == nil && p != s.WakeStream && !streams[p] {
					add = append(add, p)
				}
			}
		}
	}
	if len(add) > 0 {
		if s, err = st.update(ctx, id, func(s *dsSub) error {
			n := 0
			for _, p := range add {
				if s.Links[p] == nil && len(s.Links) < dsMaxLinks {
					s.Links[p] = &dsLink{Glob: true}
					n++
				}
			}
			if n == 0 {
				return errDSNoChange
			}
			return nil
		}); err != nil || s == nil {
			return false, err
		}
	}
	now := time.Now().UnixMilli()
	expired := false
	if s.inFlight() && s.LeaseUntil > 0 && now >= s.LeaseUntil {
		expired = true
		wake, lease := s.WakeID, s.LeaseUntil
		if s, err = st.update(ctx, id, func(s *dsSub) error {
			if s.WakeID != wake || s.LeaseUntil != lease {
				return errDSNoChange
			}
			s.clearWake()
			return nil
		}); err != nil || s == nil {
			return false, err
		}
	}
	if s.inFlight() && s.Type == "webhook" && s.NextTry > 0 && now >= s.NextTry {
		wake, next := s.WakeID, s.NextTry
		won := false
		if s, err = st.update(ctx, id, func(s *dsSub) error {
			if s.WakeID != wake || s.NextTry != next {
				return errDSNoChange
			}
			s.NextTry, s.LeaseUntil, won = 0, now+s.LeaseTTLms, true
			return nil
		}); err != nil || s == nil || !won {
			return false, err
		}
		tails, _ := m.tails(ctx, s)
		m.deliver(s, sec, tails)
		return false, nil
	}
	if s.inFlight() {
		if discover && s.Type == "pull-wake" && s.Holder == "" && !s.Announced {
			// The wake's event was not stored (the append failed, or its gateway died
			// first): announce it now. Workers may see an event twice; a second claim is
			// answered ALREADY_CLAIMED.
			first, _ := s.pending(s.Snapshot)
			m.appendWake(ctx, s, first)
		}
		return false, nil
	}
	if !discover && !expired && len(streams) > 0 && len(add) == 0 {
		// A poke names the streams that changed: when none of them has data beyond its
		// cursor (a publish JetStream refused, or one already acked), reading every other
		// link's tail is not needed. Reconciliation reads them all.
		paths := make([]string, 0, len(streams))
		for p := range streams {
			if s.Links[p] != nil {
				paths = append(paths, p)
			}
		}
		tails, _ := m.readTails(ctx, paths)
		if _, ok := s.pending(tails); !ok {
			return false, nil
		}
	}
	return m.wakeIfPending(ctx, st, sec, s)
}

// wakeIfPending starts a wake when a linked stream has data beyond its cursor (and drops
// glob links to streams that are gone: garbage collection). It reports whether a wake is
// running afterwards (this one's, or one that another step started first).
func (m *Server) wakeIfPending(ctx context.Context, st *dsStore, sec *dsSecrets, s *dsSub) (bool, error) {
	tails, gone := m.tails(ctx, s)
	first, ok := s.pending(tails)
	if !ok && len(gone) == 0 {
		return false, nil
	}
	started, running := false, false
	s, err := st.update(ctx, s.ID, func(s *dsSub) error {
		started, running = false, s.inFlight()
		changed := gcLinks(s, gone)
		if !s.inFlight() {
			if _, ok := s.pending(tails); ok {
				s.newWake(tails)
				if s.Type == "webhook" {
					s.LeaseUntil = time.Now().UnixMilli() + s.LeaseTTLms
				}
				started, changed = true, true
			}
		}
		if !changed {
			return errDSNoChange
		}
		return nil
	})
	if err != nil || s == nil || !started {
		// running: another gateway (or a poke here) started the next wake first.
		return running && s != nil, err
	}
	if s.Type == "webhook" {
		m.spawn(func() { m.deliver(s, sec, tails) })
	} else {
		m.appendWake(ctx, s, first)
	}
	return true, nil
}

// gcLinks drops glob links to deleted streams and rewinds explicit ones (a stream made
// again under that name starts its offsets anew).
func gcLinks(s *dsSub, gone []string) bool {
	changed := false
	for _, p := range gone {
		l := s.Links[p]
		switch {
		case l == nil:
		case !l.Explicit:
			delete(s.Links, p)
			changed = true
		case l.Acked != 0:
			l.Acked, l.Glob = 0, false
			changed = true
		}
	}
	return changed
}

// tails reads every linked stream's tail (bounded parallelism). Streams that do not
// exist read as 0 and are listed in gone.
func (m *Server) tails(ctx context.Context, s *dsSub) (map[string]uint64, []string) {
	paths := make([]string, 0, len(s.Links))
	for p := range s.Links {
		paths = append(paths, p)
	}
	return m.readTails(ctx, paths)
}

func (m *Server) readTails(ctx context.Context, paths []string) (map[string]uint64, []string) {
	out := make(map[string]uint64, len(paths))
	var gone []string
	var mu sync.Mutex
	sem := make(chan struct{}, dsTailWorkers)
	var wg sync.WaitGroup
	for _, p := range paths {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			t, exists, err := m.tail(ctx, p)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				// Unknown: keep it at its cursor (not pending, not gone); asked again later.
				return
			}
			out[p] = t
			if !exists {
				gone = append(gone, p)
			}
		}()
	}
	wg.Wait()
	return out, gone
}

// tail is a stream's Stream-Next-Offset position.
func (m *Server) tail(ctx context.Context, name string) (uint64, bool, error) {
	select {
	case m.tailSem <- struct{}{}:
		defer func() { <-m.tailSem }()
	case <-ctx.Done():
		return 0, false, ctx.Err()
	}
	rd, ans, err := m.sc.Read(ctx, name, streamapi.DSReadQuery{From: 1 << 62})
	st := ans.Status
	switch {
	case err != nil:
		return 0, false, err
	case st == http.StatusOK:
		return rd.Next, true, nil
	case st == http.StatusNotFound || st == http.StatusGone:
		return 0, false, nil
	default:
		return 0, false, errors.New("stream " + name + ": status " + http.StatusText(st))
	}
}

// listMatching lists existing streams whose names match pattern, at most limit+1.
func (m *Server) listMatching(ctx context.Context, pattern string, limit int) ([]string, error) {
	prefix := wire.LogSubjectPrefix + streamapi.ClassName + "."
	seen := map[string]bool{}
	var out []string
	for _, filter := range globSubjects(prefix, pattern) {
		l := m.opts.JetStream.ListStreams(ctx, jetstream.WithStreamListSubject(filter))
		for info := range l.Info() {
			for _, subj := range info.Config.Subjects {
				name := strings.ReplaceAll(strings.TrimPrefix(subj, prefix), ".", "/")
				if !strings.HasPrefix(subj, prefix) || seen[name] || !globMatch(pattern, name) || names.ValidateStream(name) != nil {
					continue
				}
				seen[name] = true
				if len(out) <= limit {
					out = append(out, name)
				}
			}
		}
		if err := l.Err(); err != nil {
			return out, err
		}
	}
	sort.Strings(out)
	return out, nil
}

// streamInfos describes the links for a notification or a claim.
func streamInfos(s *dsSub, tails map[string]uint64) []map[string]any {
	paths := make([]string, 0, len(s.Links))
	for p := range s.Links {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	out := make([]map[string]any, 0, len(paths))
	for _, p := range paths {
		l := s.Links[p]
		t, ok := tails[p]
		if !ok || t < l.Acked {
			t = l.Acked
		}
		out = append(out, map[string]any{"path": p, "link_type": l.kind(), "acked_offset": streamapi.FormatOffset(l.Acked),
			"tail_offset": streamapi.FormatOffset(t), "has_pending": t > l.Acked})
	}
	return out
}

func (l *dsLink) kind() string {
	if l.Explicit {
		return "explicit"
	}
	return "glob"
}

// deliver posts wake s to its webhook and records the outcome.
func (m *Server) deliver(s *dsSub, sec *dsSecrets, tails map[string]uint64) {
	snap := map[string]uint64{}
	for p, t := range s.Snapshot {
		snap[p] = t
	}
	body, _ := json.Marshal(map[string]any{
		"subscription_id": s.ID, "wake_id": s.WakeID, "generation": s.Generation,
		"streams":        streamInfos(s, snap),
		"callback_url":   s.Base + "/__ds/subscriptions/" + s.ID + "/callback",
		"callback_token": sec.token(s, "cb"),
	})
	ctx, cancel := context.WithTimeout(m.ctx, dsWebhookTimeout)
	defer cancel()
	ok, done := false, false
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL, bytes.NewReader(body))
	if err == nil {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Webhook-Signature", sec.sign(body, time.Now()))
		req.Header.Set("User-Agent", "holdfast-durable-streams")
		var res *http.Response
		if res, err = m.client.Do(req); err == nil {
			b, _ := io.ReadAll(io.LimitReader(res.Body, dsMaxWebhookReply))
			_ = res.Body.Close()
			ok = res.StatusCode >= 200 && res.StatusCode < 300
			var reply struct {
				Done bool `json:"done"`
			}
			done = ok && json.Unmarshal(b, &reply) == nil && reply.Done
		}
	}
	if !ok {
		m.log.Info("ds webhook delivery failed; retrying", "subscription", s.ID, "err", err)
	}
	uctx, ucancel := context.WithTimeout(m.ctx, m.opts.RequestTimeout)
	defer ucancel()
	wake := s.WakeID
	_, err = m.store.update(uctx, s.ID, func(s *dsSub) error {
		if s.WakeID != wake {
			return errDSNoChange // fenced: a callback, expiry or deletion came first
		}
		switch {
		case done:
			for p, t := range s.Snapshot {
				if l := s.Links[p]; l != nil && t > l.Acked {
					l.Acked = t
				}
			}
			s.clearWake()
		case ok:
			if s.Status == "active" && s.Attempts == 0 {
				return errDSNoChange
			}
			s.Status, s.Attempts, s.NextTry = "active", 0, 0
		default:
			s.Attempts++
			s.Status, s.LeaseUntil = "failed", 0
			s.NextTry = time.Now().Add(retryDelay(s.Attempts)).UnixMilli()
		}
		return nil
	})
	if err != nil {
		m.log.Warn("ds webhook: cannot record the delivery", "subscription", s.ID, "err", err)
	}
	if done {
		m.poke(s.ID, "", false) // new data may have come meanwhile
	}
}

// retryDelay: 1 s, 2 s, 4 s ... up to 60 s, ±20 %.
func retryDelay(attempt int) time.Duration {
	d := dsWebhookRetryFirst << min(attempt-1, 10)
	d = min(d, dsWebhookRetryMax)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// appendWake writes a pull-wake subscription's wake event to its wake stream.
func (m *Server) appendWake(ctx context.Context, s *dsSub, first string) {
	ev, _ := json.Marshal(map[string]any{"type": "wake", "subscription_id": s.ID, "stream": first,
		"generation": s.Generation, "ts": time.Now().UnixMilli()})
	ans, err := m.sc.Append(ctx, s.WakeStream, streamapi.DSAppend{ContentType: "application/json", Data: ev, Batch: 1})
	if err != nil || ans.Status >= 300 {
		// The wake stays claimable, and reconciliation tries the event again.
		m.log.Warn("ds pull-wake: cannot write the wake event", "subscription", s.ID, "wake_stream", s.WakeStream, "status", ans.Status, "err", err, "answer", ans.Message)
		return
	}
	wake := s.WakeID
	if _, err := m.store.update(ctx, s.ID, func(s *dsSub) error {
		if s.WakeID != wake || s.Announced {
			return errDSNoChange
		}
		s.Announced = true
		return nil
	}); err != nil {
		m.log.Warn("ds pull-wake: cannot record the wake event", "subscription", s.ID, "err", err)
	}
}

// schedule fires lease expiries and webhook retries at their time, and reconciles.
func (m *Server) schedule() {
	recon := time.NewTimer(m.reconcileJitter())
	defer recon.Stop()
	gc := time.NewTicker(dsTombstoneGC + rand.N(dsTombstoneGC/4))
	defer gc.Stop()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		next := int64(0)
		var due []string
		now := time.Now().UnixMilli()
		m.mu.Lock()
		for id, s := range m.mirror {
			for _, d := range []int64{s.LeaseUntil, s.NextTry} {
				if d == 0 || !s.inFlight() {
					continue
				}
				if d <= now {
					due = append(due, id)
				} else if next == 0 || d < next {
					next = d
				}
			}
		}
		m.mu.Unlock()
		for _, id := range due {
			m.poke(id, "", false)
		}
		wait := time.Hour
		if next > 0 {
			wait = time.Duration(next-now)*time.Millisecond + 5*time.Millisecond
		}
		if len(due) > 0 {
			wait = min(wait, 250*time.Millisecond) // a poke that lost its race is asked again
		}
		t.Reset(wait)
		select {
		case <-m.ctx.Done():
			return
		case <-m.kick:
		case <-t.C:
		case <-gc.C:
			// Deleted subscriptions leave a purge marker (the tombstone): drop those older
			// than an hour, so the bucket does not grow with every id ever deleted.
			ctx, cancel := context.WithTimeout(m.ctx, time.Minute)
			if err := m.store.kv.PurgeDeletes(ctx, jetstream.DeleteMarkersOlderThan(dsTombstoneGC)); err != nil && m.ctx.Err() == nil {
				m.log.Warn("ds subscriptions: tombstone cleanup failed", "err", err)
			}
			cancel()
			share := m.reconcileShare()
			m.mu.Lock()
			ids := make([]string, 0, len(m.mirror))
			for id := range m.mirror {
				if share(id) {
					ids = append(ids, id)
				}
			}
			m.mu.Unlock()
			for _, id := range ids {
				m.poke(id, "", true)
			}
			recon.Reset(m.reconcileJitter())
		}
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
	}
}

// reconcileShare picks this gateway's share of the reconciliation: subscription ids are
// spread over the live gateways (their presence keys) by hash, so each is reconciled by
// about one gateway. When the list cannot be read, or this gateway is not in it, it
// takes every subscription: reconciling twice costs reads, never correctness.
func (m *Server) reconcileShare() func(id string) bool {
	all := func(string) bool { return true }
	ctx, cancel := context.WithTimeout(m.ctx, 5*time.Second)
	defer cancel()
	keys, err := m.opts.Cluster.Gateways(ctx)
	if err != nil {
		return all
	}
	sort.Strings(keys)
	me := sort.SearchStrings(keys, m.id)
	if me == len(keys) || keys[me] != m.id {
		return all
	}
	return func(id string) bool {
		h := fnv.New32a()
		_, _ = h.Write([]byte(id))
		return int(h.Sum32()%uint32(len(keys))) == me
	}
}

func (m *Server) reconcileJitter() time.Duration {
	return time.Duration(float64(m.reconcile) * (0.75 + 0.5*rand.Float64()))
}

func (m *Server) wakeScheduler() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}
