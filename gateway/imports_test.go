package gateway

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports: the edge links no object class and no object host. Everything the gateway
// and its sub-packages need of the Stream class is in its contract (builtin/stream/streamapi);
// the hosts are reached over NATS only (internal/wire). Tests may host the class, and so
// may gateway/internal/gwtest, the tests' harness, which nothing but tests imports.
func TestImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Deps \" \"}}", "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	const mod = "github.com/holdfast/holdfast/"
	forbidden := []string{mod + "builtin/stream", mod + "runtime", mod + "examples/", mod + "localdev"}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		deps := strings.Fields(line)
		if deps[0] == mod+"gateway/internal/gwtest" {
			continue
		}
		for _, p := range deps[1:] {
			for _, f := range forbidden {
				if p == f || strings.HasSuffix(f, "/") && strings.HasPrefix(p, f) {
					t.Errorf("%s depends on %s", deps[0], p)
				}
			}
		}
	}
}
