// Package metricstest scrapes a Prometheus endpoint for tests and reads its samples.
package metricstest

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Samples are one scrape's metric families by name.
type Samples map[string]*dto.MetricFamily

// Scrape GETs url (with the Authorization header auth, when set) and parses the text
// format. It fails the test unless the answer is a 200 that parses.
func Scrape(t testing.TB, url, auth string) Samples {
	t.Helper()
	s, err := TryScrape(url, auth)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TryScrape is Scrape returning its error, for a test that polls.
func TryScrape(url, auth string) (Samples, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return Parse(resp.Body)
}

// Parse reads the text exposition format.
func Parse(r io.Reader) (Samples, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("metricstest: %w", err)
	}
	return Samples(fams), nil
}

// Value is the value of the sample of name whose labels include labels ("k", "v", ...),
// summed over the samples that match (a counter's value, a gauge's, or a histogram's
// count), and whether any matched.
func (s Samples) Value(name string, labels ...string) (float64, bool) {
	f := s[name]
	if f == nil {
		return 0, false
	}
	var sum float64
	found := false
	for _, m := range f.Metric {
		if !hasLabels(m, labels) {
			continue
		}
		found = true
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		case m.Untyped != nil:
			sum += m.Untyped.GetValue()
		}
	}
	return sum, found
}

// Get is Value, 0 when nothing matched.
func (s Samples) Get(name string, labels ...string) float64 {
	v, _ := s.Value(name, labels...)
	return v
}

// Names are the metric families present, sorted.
func (s Samples) Names() []string {
	var n []string
	for k := range s {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// String lists every sample of name, for a failure message.
func (s Samples) String(name string) string {
	f := s[name]
	if f == nil {
		return name + ": absent"
	}
	var b strings.Builder
	for _, m := range f.Metric {
		fmt.Fprintf(&b, "%s{", name)
		for i, l := range m.Label {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "%s=%q", l.GetName(), l.GetValue())
		}
		v, _ := Samples{name: &dto.MetricFamily{Metric: []*dto.Metric{m}}}.Value(name)
		fmt.Fprintf(&b, "} %g\n", v)
	}
	return b.String()
}

func hasLabels(m *dto.Metric, kv []string) bool {
	for i := 0; i+1 < len(kv); i += 2 {
		ok := false
		for _, l := range m.Label {
			if l.GetName() == kv[i] && l.GetValue() == kv[i+1] {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}
