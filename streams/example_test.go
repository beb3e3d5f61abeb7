package streams_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/holdfast/holdfast/streams"
)

// Each API key may read and write only the streams under its own prefix, publishes are
// at most 1 KiB, and messages marked "internal" are not sent to subscribers.
func Example() {
	owns := func(c streams.Conn, stream string) error {
		if !strings.HasPrefix(stream, "tenant-"+c.Key+"/") {
			return fmt.Errorf("%w: %s is not yours", streams.ErrForbidden, stream)
		}
		return nil
	}
	hooks := streams.Hooks{
		AuthorizeSubscribe: func(_ context.Context, c streams.Conn, stream string) error {
			return owns(c, stream)
		},
		AuthorizePublish: func(_ context.Context, c streams.Conn, stream string, data json.RawMessage) error {
			if len(data) > 1<<10 {
				return fmt.Errorf("%w: message over 1 KiB", streams.ErrForbidden)
			}
			return owns(c, stream)
		},
		Transform: func(_ string, _ uint64, data json.RawMessage) (json.RawMessage, bool) {
			var m struct{ Internal bool }
			if json.Unmarshal(data, &m) == nil && m.Internal {
				return nil, false
			}
			return data, true
		},
	}
	// In main: holdfast.Main(holdfast.WithStreamHooks(hooks))
	c := streams.Conn{Key: "acme"}
	fmt.Println(hooks.AuthorizeSubscribe(context.Background(), c, "tenant-acme/orders"))
	fmt.Println(hooks.AuthorizeSubscribe(context.Background(), c, "tenant-other/orders"))
	_, keep := hooks.Transform("tenant-acme/orders", 7, json.RawMessage(`{"internal":true}`))
	fmt.Println(keep)
	// Output:
	// <nil>
	// streams: forbidden: tenant-other/orders is not yours
	// false
}
