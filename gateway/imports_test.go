package gateway

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports: the edge links no object class and no object host. Everything the gateway
// and its sub-packages need of the Stream class is in its contract (builtin/stream/streamapi);
// the hosts are reached over NATS only (internal/wire). Tests may host the class.
func TestImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	const mod = "github.com/holdfast/holdfast/"
	forbidden := []string{mod + "builtin/stream", mod + "runtime", mod + "examples/", mod + "localdev"}
	for _, p := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if p == f || strings.HasSuffix(f, "/") && strings.HasPrefix(p, f) {
				t.Errorf("gateway/... depends on %s", p)
			}
		}
	}
}
