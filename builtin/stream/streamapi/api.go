package streamapi

import "encoding/json"

// ClassName is the Stream class's name: the class hosts register and gateways address.
const ClassName = "Stream"

// Routes: the paths of the object's internal API (see the package doc for methods and
// bodies).
const (
	RoutePublish      = "/publish"
	RouteInfo         = "/info"
	RouteConfigure    = "/configure"
	RouteDelete       = "/delete"
	RouteState        = "/state"
	RouteAck          = "/ack"
	RouteClient       = "/client"
	RouteGroupClaim   = "/group/claim"
	RouteGroupAck     = "/group/ack"
	RouteGroupRelease = "/group/release"
	RouteGroupInfo    = "/group/info"
	RouteDS           = "/ds"
	RouteDSBatch      = "/ds/batch"
	RouteDSRead       = "/ds/read"
	RouteDSRef        = "/ds/ref"
)

// Limits.
const (
	// MaxBatch bounds the messages of one /publish and the appends of one /ds/batch.
	MaxBatch = 1024
	// MaxBody bounds a request body.
	MaxBody = 4 << 20
	// MaxDSBatchBody bounds a POST /ds/batch body: one append of MaxBody plus its head.
	MaxDSBatchBody = MaxBody + 64<<10
	// MaxStateBytes bounds the JSON state document of a stream.
	MaxStateBytes = 64 << 10
	// MaxClientID bounds a durable client id, a group name and a member name.
	MaxClientID = 128
	// MaxProducerID bounds an idempotent producer's id.
	MaxProducerID = 256
	// MaxProducerSeq bounds a producer's epoch and seq (2^53-1: exact in JavaScript).
	MaxProducerSeq = 1<<53 - 1
)

// PublishItem is one message of a /publish batch. With Producer set, the message is stored
// at most once per (producer id, epoch, seq): see Published.
type PublishItem struct {
	ID       string          `json:"id"`
	Data     json.RawMessage `json:"data"`
	Producer *Producer       `json:"producer,omitempty"`
}

// Published is the answer for one PublishItem: the message's seq, or, when Code is set,
// why it was not stored (nothing was written for it; the batch's other items are answered
// on their own).
//
// A producer's retry of a message already stored answers the original seq with Duplicate
// set. Codes for producer items: CodeProducerGap (ExpectedSeq, ReceivedSeq),
// CodeProducerUnknown, CodeStaleEpoch (ProducerEpoch: the current one), CodeBadProducer,
// and CodeDuplicateUnknown (stored once before, at a seq older than the object keeps).
type Published struct {
	ID            string  `json:"id"`
	Seq           uint64  `json:"seq,omitempty"`
	Duplicate     bool    `json:"duplicate,omitempty"`
	Code          string  `json:"code,omitempty"`
	Message       string  `json:"message,omitempty"`
	ExpectedSeq   *uint64 `json:"expectedSeq,omitempty"`
	ReceivedSeq   *uint64 `json:"receivedSeq,omitempty"`
	ProducerEpoch *uint64 `json:"producerEpoch,omitempty"`
}

// Info describes the stream's retained history: FirstSeq > LastSeq when it holds none.
type Info struct {
	FirstSeq uint64 `json:"firstSeq"`
	LastSeq  uint64 `json:"lastSeq"`
}

// Config is a /configure body: retention limits, zero for none.
type Config struct {
	MaxMsgs  int64 `json:"maxMsgs"`
	MaxBytes int64 `json:"maxBytes"`
	MaxAgeMs int64 `json:"maxAgeMs"`
}

// Trim is a /delete body: drop the messages up to and including UpTo (required).
type Trim struct {
	UpTo *uint64 `json:"upTo"`
}

// State answers GET /state: the stream's JSON state document (null when none) and the
// seq it was recorded at.
type State struct {
	State      json.RawMessage `json:"state"`
	Checkpoint uint64          `json:"checkpoint,omitempty"`
}

// PutState is the body of PUT /state: State is required; a Checkpoint also drops the
// history up to it, and without one the stored checkpoint is kept.
type PutState struct {
	State      json.RawMessage `json:"state"`
	Checkpoint *uint64         `json:"checkpoint,omitempty"`
}

// StateStored answers PUT /state.
type StateStored struct {
	Checkpoint uint64 `json:"checkpoint"`
	FirstSeq   uint64 `json:"firstSeq"`
	LastSeq    uint64 `json:"lastSeq"`
}

// Ack is one durable client's cumulative ack (POST /ack), and the answer of GET /client.
type Ack struct {
	Client string `json:"client"`
	Seq    uint64 `json:"seq"`
}

// Empty is the answer of routes that answer nothing: {}.
type Empty struct{}
