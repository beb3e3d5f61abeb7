// Package e2e runs real holdfast and nats-server processes and checks, from the outside,
// what the in-process tests cannot: that an object survives its host being killed or
// paused, with every acknowledged write counted exactly once.
//
// The tests build both binaries once per run (see TestMain) and are skipped with -short.
package e2e
