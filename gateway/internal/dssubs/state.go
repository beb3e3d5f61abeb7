package dssubs

// Durable Streams subscriptions (PROTOCOL.md sections 6 and 7): the durable state. Every
// subscription is one JSON value in the JetStream KV bucket hf_ds_subs, changed only by
// compare-and-set on its revision, so any gateway may serve any request or timer and two
// gateways racing for the same transition (a wake, a claim, a lease expiry) cannot both
// win. The bucket also holds the cluster's signing secrets (one key, created once).

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/holdfast/holdfast/internal/cluster"
	"github.com/holdfast/holdfast/internal/names"
	"github.com/nats-io/nats.go/jetstream"
)

const (
	dsSubsBucket = "hf_ds_subs"
	dsSubKey     = "sub."    // + id
	dsSecretsKey = "secrets" // the signing key and the token MAC key
	// dsMaxLinks bounds a subscription's streams: its state is one KV value (≤ 1 MiB).
	dsMaxLinks = 2000
	// dsMaxSubs bounds the subscriptions of a cluster (each gateway mirrors them all).
	dsMaxSubs           = 10000
	dsDefaultLeaseTTL   = 30 * time.Second
	dsMinLeaseTTL       = time.Second
	dsMaxLeaseTTL       = 10 * time.Minute
	dsMaxDescription    = 1024
	dsMaxURL            = 2048
	dsCASAttempts       = 32
	dsWebhookRetryFirst = time.Second
	dsWebhookRetryMax   = 60 * time.Second
)

// dsLink is one linked stream's cursor.
type dsLink struct {
	Glob     bool   `json:"g,omitempty"`
	Explicit bool   `json:"e,omitempty"`
	Acked    uint64 `json:"a"` // position (a Stream-Next-Offset): everything below is processed
}

// dsSub is a subscription's whole state.
type dsSub struct {
	ID          string   `json:"id"`
	Type        string   `json:"type"` // "webhook" or "pull-wake"
	Pattern     string   `json:"pattern,omitempty"`
	Explicit    []string `json:"explicit,omitempty"` // as created (the config hash covers it)
	URL         string   `json:"url,omitempty"`
	WakeStream  string   `json:"wake_stream,omitempty"`
	LeaseTTLms  int64    `json:"lease_ttl_ms"`
	Description string   `json:"description,omitempty"`
	Hash        string   `json:"hash"`
	Base        string   `json:"base"`    // the stream root URL clients used, for callback URLs
	Created     int64    `json:"created"` // unix ns: also tells a re-created id from the old one

	Links map[string]*dsLink `json:"links"`

	Status     string            `json:"status"` // "active" or "failed"
	Generation uint64            `json:"gen"`
	WakeID     string            `json:"wake_id,omitempty"`
	Holder     string            `json:"holder,omitempty"`
	LeaseUntil int64             `json:"lease_until,omitempty"` // unix ms; 0: none running
	Snapshot   map[string]uint64 `json:"snapshot,omitempty"`    // the wake's tails
	Attempts   int               `json:"attempts,omitempty"`
	NextTry    int64             `json:"next_attempt_at,omitempty"` // unix ms: webhook retry due
	Announced  bool              `json:"announced,omitempty"`       // pull-wake: the wake event is stored
}

// inFlight: a wake is issued and not finished.
func (s *dsSub) inFlight() bool { return s.WakeID != "" }

// clearWake ends the current wake (done, release, lease expiry).
func (s *dsSub) clearWake() {
	s.WakeID, s.Holder, s.LeaseUntil, s.Snapshot, s.NextTry, s.Attempts = "", "", 0, nil, 0, 0
	s.Announced = false
	s.Status = "active"
}

// newWake starts wake generation+1 with the tails given.
func (s *dsSub) newWake(tails map[string]uint64) {
	s.Generation++
	s.WakeID = "w_" + randToken(12)
	s.Snapshot = map[string]uint64{}
	for p := range s.Links {
		s.Snapshot[p] = tails[p]
	}
	s.Holder, s.LeaseUntil, s.NextTry, s.Attempts, s.Announced = "", 0, 0, 0, false
}

// pending reports whether any link's tail is beyond its cursor, and the first such path.
func (s *dsSub) pending(tails map[string]uint64) (string, bool) {
	first := ""
	for p, l := range s.Links {
		if tails[p] > l.Acked && (first == "" || p < first) {
			first = p
		}
	}
	return first, first != ""
}

func randToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// validSubID: ids become KV keys.
func validSubID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// validPattern checks a glob: segments that are name tokens, "*" (one segment) or "**"
// (zero or more).
func validPattern(p string) error {
	if p == "" || len(p) > names.MaxNameLen {
		return errors.New("pattern: 1 to 255 bytes")
	}
	segs := strings.Split(p, "/")
	if len(segs) > 16 {
		return errors.New("pattern: at most 16 segments")
	}
	for _, s := range segs {
		if s == "*" || s == "**" {
			continue
		}
		if err := names.Validate(s); err != nil || strings.Contains(s, "/") {
			return fmt.Errorf("pattern: segment %q is neither a name token, * nor **", s)
		}
	}
	return nil
}

// globMatch matches a stream path against a pattern.
func globMatch(pattern, path string) bool {
	return globSegs(strings.Split(pattern, "/"), strings.Split(path, "/"))
}

func globSegs(p, s []string) bool {
	for len(p) > 0 {
		switch p[0] {
		case "**":
			for i := 0; i <= len(s); i++ { // bounded: at most 16 segments each
				if globSegs(p[1:], s[i:]) {
					return true
				}
			}
			return false
		case "*":
			if len(s) == 0 {
				return false
			}
		default:
			if len(s) == 0 || s[0] != p[0] {
				return false
			}
		}
		p, s = p[1:], s[1:]
	}
	return len(s) == 0
}

// globSubjects are NATS subject filters (under the stream log prefix) covering a pattern:
// a superset, globMatch decides.
func globSubjects(prefix, pattern string) []string {
	segs := strings.Split(pattern, "/")
	var toks []string
	for i, s := range segs {
		if s == "**" {
			out := []string{prefix + strings.Join(append(toks, ">"), ".")}
			if i == len(segs)-1 && len(toks) > 0 {
				out = append(out, prefix+strings.Join(toks, ".")) // ** matching nothing
			}
			return out
		}
		toks = append(toks, s)
	}
	return []string{prefix + strings.Join(toks, ".")}
}

// dsSecrets are the cluster's signing secrets, created once (kv.Create) by whichever
// gateway needs them first and shared by all.
type dsSecrets struct {
	Seed []byte `json:"ed25519_seed"`
	MAC  []byte `json:"token_mac"`

	priv ed25519.PrivateKey
	kid  string
}

func (s *dsSecrets) init() error {
	if len(s.Seed) != ed25519.SeedSize || len(s.MAC) < 32 {
		return errors.New("ds subscriptions: malformed secrets entry")
	}
	s.priv = ed25519.NewKeyFromSeed(s.Seed)
	// kid: an RFC 7638 JWK thumbprint of the public key, so it is derived from the key.
	x := base64.RawURLEncoding.EncodeToString(s.priv.Public().(ed25519.PublicKey))
	d := sha256.Sum256([]byte(`{"crv":"Ed25519","kty":"OKP","x":"` + x + `"}`))
	s.kid = "ds_" + base64.RawURLEncoding.EncodeToString(d[:12])
	return nil
}

func (s *dsSecrets) jwk() map[string]string {
	return map[string]string{"kty": "OKP", "crv": "Ed25519", "kid": s.kid, "use": "sig", "alg": "EdDSA",
		"x": base64.RawURLEncoding.EncodeToString(s.priv.Public().(ed25519.PublicKey))}
}

// sign is the Webhook-Signature header of body at time now.
func (s *dsSecrets) sign(body []byte, now time.Time) string {
	t := strconv.FormatInt(now.Unix(), 10)
	sig := ed25519.Sign(s.priv, append([]byte(t+"."), body...))
	return "t=" + t + ",kid=" + s.kid + ",ed25519=" + base64.RawURLEncoding.EncodeToString(sig)
}

// token mints the bearer token of one wake: the claims in clear, then their HMAC. It names
// the subscription's incarnation, generation and wake, so fencing needs nothing stored.
func (s *dsSecrets) token(sub *dsSub, kind string) string {
	claims := base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf("%s|%d|%d|%s|%s", sub.ID, sub.Created, sub.Generation, sub.WakeID, kind)))
	m := hmac.New(sha256.New, s.MAC)
	m.Write([]byte(claims))
	return claims + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// dsClaims is a verified token's content.
type dsClaims struct {
	id         string
	created    int64
	generation uint64
	wakeID     string
	kind       string
}

// verify checks a token's MAC (hmac.Equal: constant time) and returns its claims.
func (s *dsSecrets) verify(tok string) (dsClaims, bool) {
	claims, mac, ok := strings.Cut(tok, ".")
	if !ok || len(tok) > 1024 {
		return dsClaims{}, false
	}
	got, err := base64.RawURLEncoding.DecodeString(mac)
	if err != nil {
		return dsClaims{}, false
	}
	m := hmac.New(sha256.New, s.MAC)
	m.Write([]byte(claims))
	if !hmac.Equal(got, m.Sum(nil)) {
		return dsClaims{}, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(claims)
	if err != nil {
		return dsClaims{}, false
	}
	f := strings.Split(string(raw), "|")
	if len(f) != 5 {
		return dsClaims{}, false
	}
	c := dsClaims{id: f[0], wakeID: f[3], kind: f[4]}
	c.created, err = strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return dsClaims{}, false
	}
	if c.generation, err = strconv.ParseUint(f[2], 10, 64); err != nil {
		return dsClaims{}, false
	}
	return c, true
}

// dsStore is the bucket.
type dsStore struct {
	kv jetstream.KeyValue
}

func openDSStore(ctx context.Context, js jetstream.JetStream, replicas int, log *slog.Logger) (*dsStore, error) {
	kv, err := cluster.KeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket: dsSubsBucket, Description: "Durable Streams subscriptions and signing secrets",
		History: 1, Storage: jetstream.FileStorage, Replicas: replicas,
	}, log)
	if err != nil {
		return nil, fmt.Errorf("ds subscriptions: bucket: %w", err)
	}
	return &dsStore{kv: kv}, nil
}

// secrets reads the signing secrets, creating them when no gateway has yet.
func (st *dsStore) secrets(ctx context.Context) (*dsSecrets, error) {
	for range 3 {
		if e, err := st.kv.Get(ctx, dsSecretsKey); err == nil {
			var s dsSecrets
			if err := json.Unmarshal(e.Value(), &s); err != nil {
				return nil, err
			}
			return &s, s.init()
		} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, err
		}
		s := dsSecrets{Seed: make([]byte, ed25519.SeedSize), MAC: make([]byte, 32)}
		_, _ = rand.Read(s.Seed)
		_, _ = rand.Read(s.MAC)
		b, _ := json.Marshal(&s)
		if _, err := st.kv.Create(ctx, dsSecretsKey, b); err == nil {
			return &s, s.init()
		} else if !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, err
		}
		// Another gateway created them first: read theirs.
	}
	return nil, errors.New("ds subscriptions: cannot read or create the signing secrets")
}

// get reads a subscription; nil when there is none.
func (st *dsStore) get(ctx context.Context, id string) (*dsSub, uint64, error) {
	e, err := st.kv.Get(ctx, dsSubKey+id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	var s dsSub
	if err := json.Unmarshal(e.Value(), &s); err != nil {
		return nil, 0, err
	}
	return &s, e.Revision(), nil
}

// errDSNoChange makes update write nothing.
var errDSNoChange = errors.New("no change")

// update applies f to the subscription and writes it conditionally on the revision read,
// retrying on a lost race. f sees a fresh copy each time; it returns errDSNoChange to
// write nothing, another error to abort. A missing subscription is (nil, nil).
func (st *dsStore) update(ctx context.Context, id string, f func(s *dsSub) error) (*dsSub, error) {
	for range dsCASAttempts {
		s, rev, err := st.get(ctx, id)
		if err != nil || s == nil {
			return nil, err
		}
		if err := f(s); err != nil {
			if errors.Is(err, errDSNoChange) {
				return s, nil
			}
			return s, err
		}
		b, err := json.Marshal(s)
		if err != nil {
			return nil, err
		}
		if _, err := st.kv.Update(ctx, dsSubKey+id, b, rev); err == nil {
			return s, nil
		} else if !isWrongRev(err) {
			return nil, err
		}
	}
	return nil, errors.New("ds subscriptions: too much contention on one subscription")
}

func isWrongRev(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		errors.Is(err, jetstream.ErrKeyExists)
}
