// Package blob owns Holdfast's file storage engine on JetStream: buckets, objects, ranged
// reads, sorted paginated listing, multipart uploads and the garbage collector that removes
// data no object refers to any more. The S3 endpoint (internal/s3api) and the plain file
// API (internal/fileapi) are both thin layers over it.
//
// Layout (names use Options.Prefix, "HF_BLOB" by default):
//
//   - Stream <Prefix>_CHUNKS, subjects <prefix>.c.<blobID>: the bytes. A blob is the body of
//     one PUT or one multipart part, cut into fixed-size chunks, one message each. The
//     stream sequence of every chunk is recorded (run-length encoded) in the object's
//     record, so a ranged read fetches exactly the chunks it needs by sequence with direct
//     gets: O(range), never O(object).
//   - KV <Prefix>_META: one record per bucket (b.<bucket>), per object
//     (o.<bucket>.<base64url(key)>), per multipart upload (u.<bucket>.<uploadID>) and per
//     uploaded part (p.<uploadID>.<n>). Committing an object is one compare-and-set write
//     of its record, so two concurrent writers of a key end with one of the two complete
//     objects, never a mix.
//   - In memory, per bucket, a sorted index of keys rebuilt from a KV watch at Open and kept
//     current by it; listing is a binary search plus one step per returned entry.
//
// Garbage collection is mark and sweep: a blob whose id (which embeds its creation time) is
// older than the upload timeout and that no object or part record refers to is purged once
// it has been seen unreferenced for GCGrace. Overwrites, deletes, aborted or crashed
// uploads therefore leave nothing behind for ever, and a reader in the middle of an
// overwritten object keeps reading the old bytes for at least GCGrace; after that it gets
// ErrObjectChanged.
package blob

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/holdfast/holdfast/internal/cluster"
	"github.com/holdfast/holdfast/internal/kvwatch"
	"github.com/holdfast/holdfast/internal/metrics"
	"github.com/nats-io/nats.go/jetstream"
)

// Errors returned by the store. The HTTP layers map them to status codes.
var (
	ErrNoSuchBucket     = errors.New("blob: no such bucket")
	ErrNoSuchKey        = errors.New("blob: no such key")
	ErrBucketExists     = errors.New("blob: bucket already exists")
	ErrBucketNotEmpty   = errors.New("blob: bucket not empty")
	ErrPrecondition     = errors.New("blob: precondition failed")
	ErrNoSuchUpload     = errors.New("blob: no such upload")
	ErrInvalidPart      = errors.New("blob: invalid part")
	ErrInvalidPartOrder = errors.New("blob: parts not in ascending order")
	ErrPartTooSmall     = errors.New("blob: part smaller than the minimum part size")
	ErrObjectChanged    = errors.New("blob: object was overwritten or deleted during the read")
	ErrIncompleteBody   = errors.New("blob: body shorter than its declared length")
	ErrTooLarge         = errors.New("blob: body longer than its declared length")
	ErrObjectTooLarge   = errors.New("blob: object larger than the store's MaxObjectSize")
	ErrBadKey           = errors.New("blob: invalid key")
	// ErrKeyNotUTF8 is the ErrBadKey of a key that is not valid UTF-8 (errors.Is finds both).
	ErrKeyNotUTF8 = fmt.Errorf("%w: not valid UTF-8", ErrBadKey)
	// ErrMetaNotUTF8: a content type, kept header or custom metadata value that is not
	// valid UTF-8. Stored as JSON it would come back altered (U+FFFD for each bad byte),
	// so it is refused instead.
	ErrMetaNotUTF8   = errors.New("blob: metadata is not valid UTF-8")
	ErrBadBucketName = errors.New("blob: invalid bucket name")
	ErrUploadTooSlow = errors.New("blob: upload took longer than the upload timeout")
	ErrClosed        = errors.New("blob: store closed")
)

// MinPartSize is the smallest size of a multipart part other than the last (S3's rule).
const MinPartSize = 5 << 20

// MaxParts is the largest part number.
const MaxParts = 10000

// DefaultMaxObjectSize is Options.MaxObjectSize when unset: 5 GiB, S3's largest single
// PUT ([limits] max_file_bytes).
const DefaultMaxObjectSize = 5 << 30

// Options tune the store. Zero values take the defaults.
type Options struct {
	// Prefix names the stream and KV bucket ("HF_BLOB").
	Prefix string
	// ChunkSize is the size of one stored message (512 KiB). It is capped to the server's
	// max payload minus room for headers.
	ChunkSize int
	// Replicas of the stream and KV bucket, as cluster.Resolve decided (1). An existing
	// stream or bucket with fewer is scaled up, one with more is refused (cluster.Conform).
	Replicas int
	// GCInterval between background collections (1 min); negative disables the
	// background collector (call GC yourself).
	GCInterval time.Duration
	// GCGrace is how long data no longer referenced stays readable before it is purged
	// (5 min): a reader mid-download of an overwritten object finishes within it.
	GCGrace time.Duration
	// UploadTimeout bounds one PUT or part upload (6 h). Data of an upload older than this
	// with no record pointing at it is garbage.
	UploadTimeout time.Duration
	// MultipartExpiry aborts multipart uploads left incomplete for longer (7 days).
	MultipartExpiry time.Duration
	// WriteWindow is the number of chunks in flight per upload (8).
	WriteWindow int
	// ReadAhead is the number of chunks fetched ahead per reader (4).
	ReadAhead int
	// MaxObjectSize bounds one object, however it is written: a PUT, a part, the total of
	// a completed multipart upload (DefaultMaxObjectSize). Past it, the write fails with
	// ErrObjectTooLarge and nothing is stored: a body known to be too large is refused
	// before a byte is written, one of unknown length when it crosses the limit.
	MaxObjectSize int64
	// Logger for the collector; nil means slog.Default().
	Logger *slog.Logger
	// Metrics counts the bytes read and written; nil: counted, exported nowhere.
	Metrics *metrics.Files
}

func (o *Options) defaults() {
	if o.Prefix == "" {
		o.Prefix = "HF_BLOB"
	}
	if o.ChunkSize <= 0 {
		o.ChunkSize = 512 << 10
	}
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.GCInterval == 0 {
		o.GCInterval = time.Minute
	}
	if o.GCGrace <= 0 {
		o.GCGrace = 5 * time.Minute
	}
	if o.UploadTimeout <= 0 {
		o.UploadTimeout = 6 * time.Hour
	}
	if o.MultipartExpiry <= 0 {
		o.MultipartExpiry = 7 * 24 * time.Hour
	}
	if o.WriteWindow <= 0 {
		o.WriteWindow = 8
	}
	if o.ReadAhead <= 0 {
		o.ReadAhead = 4
	}
	if o.MaxObjectSize <= 0 {
		o.MaxObjectSize = DefaultMaxObjectSize
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Metrics == nil {
		o.Metrics = metrics.NewFiles(nil)
	}
}

// Store is the blob store. It is safe for concurrent use.
type Store struct {
	js     jetstream.JetStream
	opts   Options
	chunks jetstream.Stream
	kv     jetstream.KeyValue
	subj   string // chunk subject prefix, "<prefix>.c."
	idx    *index
	watch  *kvwatch.Watch
	cancel context.CancelFunc
	bufs   sync.Pool

	gcMu       sync.Mutex
	candidates map[string]time.Time // blob id → first seen unreferenced
}

// Open creates or opens the store's stream and KV bucket, loads the index and starts the
// watch (and the background collector unless disabled).
func Open(ctx context.Context, js jetstream.JetStream, opts Options) (*Store, error) {
	opts.defaults()
	if mp := js.Conn().MaxPayload(); mp > 0 && int64(opts.ChunkSize) > mp-4096 {
		opts.ChunkSize = int(mp - 4096)
	}
	lower := strings.ToLower(opts.Prefix)
	s := &Store{js: js, opts: opts, subj: lower + ".c.", candidates: map[string]time.Time{}}
	size := opts.ChunkSize
	s.bufs.New = func() any { b := make([]byte, size); return &b }
	var err error
	s.chunks, err = cluster.Stream(ctx, js, jetstream.StreamConfig{
		Name:        opts.Prefix + "_CHUNKS",
		Description: "Holdfast file data: one subject per blob, one message per chunk",
		Subjects:    []string{lower + ".c.>"},
		Storage:     jetstream.FileStorage,
		Replicas:    opts.Replicas,
		AllowDirect: true,
		Discard:     jetstream.DiscardOld,
	}, opts.Logger)
	if err != nil {
		return nil, fmt.Errorf("blob: chunk stream: %w", err)
	}
	s.kv, err = cluster.KeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket:      opts.Prefix + "_META",
		Description: "Holdfast file metadata: buckets, objects, multipart uploads",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    opts.Replicas,
	}, opts.Logger)
	if err != nil {
		return nil, fmt.Errorf("blob: meta bucket: %w", err)
	}
	s.idx = newIndex()
	wctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.watch, err = kvwatch.Start(wctx, s.kv, kvwatch.Config{What: "file metadata", Logger: opts.Logger, Entry: s.idx.apply})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("blob: watch: %w", err)
	}
	// The index holds every current entry before the store serves.
	if err := s.watch.WaitSynced(ctx); err != nil {
		s.watch.Stop()
		cancel()
		return nil, fmt.Errorf("blob: loading the index: %w", err)
	}
	if opts.GCInterval > 0 {
		go s.gcLoop(wctx)
	}
	return s, nil
}

// Close stops the watch and the collector. It does not close the connection.
func (s *Store) Close() error {
	s.cancel()
	s.watch.Stop()
	s.idx.close()
	return nil
}

// Options returns the effective options.
func (s *Store) Options() Options { return s.opts }

// newBlobID returns a fresh id: 16 hex digits of creation time (Unix ns) then 16 random.
func newBlobID() string {
	var r [8]byte
	_, _ = rand.Read(r[:])
	return fmt.Sprintf("%016x%s", time.Now().UnixNano(), hex.EncodeToString(r[:]))
}

// blobTime returns the creation time embedded in a blob or upload id.
func blobTime(id string) (time.Time, bool) {
	if len(id) < 16 {
		return time.Time{}, false
	}
	n, err := strconv.ParseUint(id[:16], 16, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(0, int64(n)), true
}
