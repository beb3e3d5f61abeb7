package gateway

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports holds the gateway's import rules (the compiler holds that there are no
// cycles):
//
//   - The edge links no object class and no object host: everything the gateway and its
//     sub-packages need of the Stream class is in its contract
//     (builtin/stream/streamapi), and hosts are reached over NATS only (internal/wire).
//     Tests may host the class, and so may gateway/internal/gwtest, the tests' harness,
//     which nothing but tests imports.
//   - No sub-package imports the gateway: it hands them what they need in their configs.
//   - The stream packages depend on one another one way only: streamhub (and the client
//     core, the feed, the typed client) below everything, dsread above streamhub, sse above
//     dsread, dshttp above sse; wsstream beside them, and the subscriptions (dssubs)
//     on no transport at all: only the typed client and the contract.
func TestImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Deps \" \"}}", "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	const mod = "github.com/holdfast/holdfast/"
	const in = mod + "gateway/internal/"
	edge := []string{mod + "builtin/stream", mod + "runtime", mod + "examples/", mod + "localdev"}
	transports := []string{in + "conns", in + "feed", in + "streamhub", in + "dsread", in + "wsstream", in + "dshttp", in + "sse",
		"github.com/gorilla/websocket", "github.com/olahol/melody"}
	rules := map[string][]string{ // package → what it must not depend on, besides edge and the gateway
		in + "conns":        {in + "feed", in + "streamclient", in + "streamhub", in + "dsread", in + "wsstream", in + "dshttp", in + "sse", in + "dssubs"},
		in + "feed":         {in + "conns", in + "streamclient", in + "streamhub", in + "dsread", in + "wsstream", in + "dshttp", in + "sse", in + "dssubs"},
		in + "streamclient": {in + "conns", in + "feed", in + "streamhub", in + "dsread", in + "wsstream", in + "dshttp", in + "sse", in + "dssubs"},
		in + "streamhub":    {in + "conns", in + "dsread", in + "wsstream", in + "dshttp", in + "sse", in + "dssubs"},
		in + "dsread":       {in + "conns", in + "wsstream", in + "dshttp", in + "sse", in + "dssubs"},
		in + "sse":          {in + "wsstream", in + "dshttp", in + "dssubs"},
		in + "dshttp":       {in + "wsstream", in + "dssubs"},
		in + "wsstream":     {in + "dsread", in + "dshttp", in + "sse", in + "dssubs"},
		in + "dssubs":       transports,
	}
	seen := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		deps := strings.Fields(line)
		pkg := deps[0]
		if pkg == in+"gwtest" {
			continue
		}
		forbidden := append(append([]string{}, edge...), rules[pkg]...)
		if pkg != mod+"gateway" {
			forbidden = append(forbidden, mod+"gateway")
		}
		if rules[pkg] != nil {
			seen++
		}
		for _, p := range deps[1:] {
			for _, f := range forbidden {
				if p == f || strings.HasSuffix(f, "/") && strings.HasPrefix(p, f) {
					t.Errorf("%s depends on %s", pkg, p)
				}
			}
		}
	}
	if seen != len(rules) {
		t.Errorf("go list showed %d of the %d packages with rules: a package was renamed or moved?", seen, len(rules))
	}
}
