package runtime

import (
	"context"
	"net/http"
)

// callDone is the answer to one call an object started with Stub.Go, on its way back to
// the object's event loop.
type callDone struct {
	done func(*http.Response, error) error
	resp *http.Response
	err  error
}

// startCall runs send on a goroutine of its own and queues its answer as an event of in.
// It is called from an event (the loop owns in.calls). The call ends with the instance:
// once it stops, the context is cancelled and the answer, which enqueue drops, never
// runs.
func (in *instance) startCall(ctx context.Context, send func(context.Context) (*http.Response, error), done func(*http.Response, error) error) {
	in.calls++
	ctx, cancel := context.WithTimeout(ctx, in.h.opts.RequestTimeout)
	stop := context.AfterFunc(in.callCtx, cancel)
	go func() {
		defer cancel()
		resp, err := send(ctx)
		stop()
		if err != nil && in.callCtx.Err() != nil {
			return // the object stopped: nobody is left to take the answer
		}
		in.enqueue(event{call: &callDone{done: done, resp: resp, err: err}})
	}()
}

// handleCallDone runs an answer's handler as an event: its writes commit, and its
// outputs leave, like any handler's.
func (in *instance) handleCallDone(c *callDone) {
	in.calls--
	if c.done == nil {
		return
	}
	in.st.begin(nil)
	var herr error
	err := in.st.protect(func() { herr = c.done(c.resp, c.err) })
	if err == nil {
		err = herr
	}
	if err != nil {
		in.h.log.Warn("call answer handler failed; its writes are undone", "object", in.key, "err", err)
	}
	in.st.end(err == nil)
}
