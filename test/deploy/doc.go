// Package deploy checks what deploy/ ships against the real thing: the NATS permissions of
// deploy/nats on a 3-node JetStream cluster of real nats-server processes, with a host and
// a gateway as real holdfast processes doing everything they do (TestLeastPermissions),
// and every Kubernetes manifest and systemd unit parsed and checked (manifests_test.go).
// It is a module of its own so that its YAML parser stays out of Holdfast's go.mod.
package deploy
