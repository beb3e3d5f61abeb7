// Command holdfast is the stock Holdfast binary: the built-in Stream class plus the
// examples' Counter (the default config's /counter/{name}) and chat (examples/chat).
package main

import (
	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/examples/chat"
	"github.com/holdfast/holdfast/examples/counter"
)

func main() {
	holdfast.Main(holdfast.WithClasses(counter.Class, chat.Room, chat.Limiter), holdfast.WithFunction("chat", chat.Edge))
}
