// Package e2e runs real holdfast and nats-server processes and checks, from the outside,
// what the in-process tests cannot: that an object survives its host being killed or
// paused, with every acknowledged write counted exactly once.
//
// TestFaults (faults_test.go) is the fault harness: three nats-server processes in one
// JetStream cluster, three object hosts and two gateways with their default settings
// (streams at R3), a workload of publishers, durable subscribers (the Go client and the
// JS client, through a load balancer in front of the gateways) and Counter increments,
// five faults (owner host killed; owner paused past its lease; the NATS servers leading
// the streams killed; a gateway killed; a rolling restart), and a checker that reads
// everything back. It prints a summary table; `task test:faults` runs every scenario
// (HOLDFAST_FAULTS=all adds the two long ones) and shows the table.
//
// The tests build both binaries once per run (see TestMain) and are skipped with -short.
package e2e
