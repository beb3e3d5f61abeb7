package runtime

// Publishing through a stream's leader election. A JetStream stream whose leader died
// drops what it is sent, without an answer, until its replicas elect another (4 to 9 s
// with nats-server's raft timeouts). A publish that waited out the commit's whole timeout
// (10 s) before anyone tried again kept an object's writes failing about 5 s past the new
// leader (fault harness, scenario 3); one that tries again every publishAttempt resumes
// within an attempt of it. Every try is conditional on the sequence the owner expects, so
// trying again never weakens the fence; what a retry must not do is store a message twice,
// and each caller says how it knows (a message id, or the owner's own sequence).

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// publishAttempt bounds one try of a publish to JetStream.
const publishAttempt = 2 * time.Second

// asyncPublishTimeout ends a pipelined publish's wait for an answer that will not come
// (appendLog has given up on it and published the message again by then).
const asyncPublishTimeout = 10 * time.Second

// retryPause is the wait before trying again after a publish refused at once (no
// responders while the stream's subject has no leader behind it): an unanswered try
// has waited its attempt already.
const retryPause = 100 * time.Millisecond

// retryable reports whether err says that JetStream did not answer a publish (it may or
// may not have stored it) or could not take it for now (503: no leader, no quorum), as
// opposed to refusing it.
func retryable(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.Code == 503
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, jetstream.ErrAsyncPublishTimeout)
}

// pauseBeforeRetry waits retryPause unless err was an attempt's timeout, and reports false
// when ctx ended first.
func pauseBeforeRetry(ctx context.Context, err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return ctx.Err() == nil
	}
	t := time.NewTimer(retryPause)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
