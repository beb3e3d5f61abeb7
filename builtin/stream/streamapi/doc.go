// Package streamapi is the contract between gateways and the built-in Stream class
// (package builtin/stream): the class name, the object's internal HTTP routes, every
// request and answer body, the batch limits, the one error shape, and the /publish body's
// encoder and decoder. Both sides import it; it imports nothing of Holdfast's, so a gateway
// needs neither the class nor the runtime to talk to a stream.
//
// The object answers every route with JSON. An error is a status of 400 or more with
// {"error":{"code":"..","message":".."}} (Error; codes.go has every code); the Durable
// Streams routes (/ds...) also answer protocol outcomes (404, 409, 410, ...) with a
// DSResult body instead, its Reason the outcome's code.
//
// What a stream stores is checked here, for every writer (CheckData, ValidJSON: JSON and
// text/* data is valid UTF-8), and what its readers show as messages is one rule,
// IsMessage.
//
// What clients see of a stream's log is defined here too: its records' headers (log.go),
// its offsets as strings (FormatOffset, ParseOffset) and the error codes (codes.go).
//
//	POST   /publish        [PublishItem, ...]          -> [Published, ...], one per item
//	GET    /info                                        -> Info
//	POST   /configure      Config                       -> Info (creates the log)
//	POST   /delete         Trim                         -> Info
//	GET    /state                                       -> State
//	PUT    /state          State                        -> StateStored
//	POST   /ack            [Ack, ...]                   -> {}
//	GET    /client?id=                                  -> Ack
//	POST   /group/claim    GroupClaim                   -> GroupClaimed
//	POST   /group/ack      GroupAck                     -> {}
//	POST   /group/release  GroupRelease                 -> {}
//	GET    /group/info?group=                           -> GroupInfo
//	PUT    /ds             DSCreate                     -> 201 | 200 | 409, DSResult
//	POST   /ds             DSAppend                     -> 200 | 204 | 400 | 403 | 404 | 409, DSResult
//	POST   /ds/batch       EncodeDSBatch(appends)       -> 200 [DSAnswer, ...], one per append
//	GET    /ds/read?DSReadQuery                         -> 200 DSRead (no records) | 404 | 410, DSResult
//	DELETE /ds                                          -> 204 | 404 | 410, DSResult
//	POST   /ds/ref         DSRef                        -> 200 DSRefResult | 404 | 410, DSResult
//
// Every answer leaves once the event's writes and appends are durable (the runtime's output
// gate), so a seq in a /publish answer names a stored message.
package streamapi
