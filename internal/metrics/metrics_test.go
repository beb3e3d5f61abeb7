package metrics

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// every registers every role's metrics on one registry, as holdfast dev does.
func every(t *testing.T) *prometheus.Registry {
	t.Helper()
	r := NewRegistry("test")
	NewGateway(r, func() map[string]int { return map[string]int{"http": 1} })
	NewHost(r)
	NewFiles(r)
	NewNATS(r)
	return r
}

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

// names are the names of every metric this package defines.
func names(t *testing.T) []string {
	t.Helper()
	ch := make(chan *prometheus.Desc, 256)
	go func() {
		for _, c := range []prometheus.Collector{
			&connCollector{}, NewNATS(nil),
		} {
			c.Describe(ch)
		}
		// Every field of every role's set, so that a metric added there is checked too.
		for _, set := range []any{NewGateway(nil, nil), NewHost(nil), NewFiles(nil)} {
			v := reflect.ValueOf(set).Elem()
			for i := range v.NumField() {
				c, ok := v.Field(i).Interface().(prometheus.Collector)
				if !ok {
					t.Errorf("%T.%s is not a collector", set, v.Type().Field(i).Name)
					continue
				}
				c.Describe(ch)
			}
		}
		close(ch)
	}()
	var out []string
	for d := range ch {
		m := fqName.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("no name in %s", d)
		}
		out = append(out, m[1])
	}
	return out
}

// TestEveryMetricIsDocumented keeps docs/operations.md's table in step with the
// definitions, and the definitions with the naming conventions.
func TestEveryMetricIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	ns := names(t)
	if len(ns) < 30 {
		t.Fatalf("only %d metrics described: %v", len(ns), ns)
	}
	for _, n := range append(ns, "holdfast_build_info") {
		if !strings.HasPrefix(n, "holdfast_") {
			t.Errorf("%s: no holdfast_ prefix", n)
		}
		if !strings.Contains(string(doc), "`"+n+"`") {
			t.Errorf("%s is not in docs/operations.md", n)
		}
	}
}

// TestOneRegistryHoldsEveryRole registers a gateway's, a host's, the files' and the NATS
// metrics on one registry (holdfast dev) and a second gateway set on it (shared, not a
// panic), then gathers.
func TestOneRegistryHoldsEveryRole(t *testing.T) {
	r := every(t)
	g := NewGateway(r, nil)
	g.HTTPRequests.WithLabelValues(RouteObject, "200").Inc()
	fams, err := r.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range fams {
		seen[f.GetName()] = true
	}
	for _, n := range []string{"holdfast_gateway_connections", "holdfast_gateway_http_requests_total", "holdfast_build_info", "go_goroutines", "process_cpu_seconds_total"} {
		if !seen[n] {
			t.Errorf("%s not gathered", n)
		}
	}
}
