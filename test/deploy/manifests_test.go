package deploy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// doc is one decoded YAML document.
type doc struct {
	file string
	m    map[string]any
}

func (d doc) String() string {
	return fmt.Sprintf("%s: %s %s", d.file, str(d.m, "kind"), str(d.m, "metadata", "name"))
}

// get walks m by keys (map keys, or list indexes as numbers).
func get(v any, path ...string) any {
	for _, p := range path {
		switch x := v.(type) {
		case map[string]any:
			v = x[p]
		case []any:
			i, err := strconv.Atoi(p)
			if err != nil || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

func str(v any, path ...string) string {
	s, _ := get(v, path...).(string)
	return s
}

func list(v any, path ...string) []any {
	l, _ := get(v, path...).([]any)
	return l
}

func decodeAll(t *testing.T, path string) []doc {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []doc
	dec := yaml.NewDecoder(f)
	for {
		var m map[string]any
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if m != nil {
			out = append(out, doc{file: filepath.Base(path), m: m})
		}
	}
	return out
}

// holdfastEnv returns the environment variables `holdfast <cmd>` reads, from its --help.
func holdfastEnv(t *testing.T, cmd string) map[string]bool {
	t.Helper()
	skipShort(t)
	out, err := exec.Command(holdfastBin, cmd, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("holdfast %s --help: %v\n%s", cmd, err, out)
	}
	env := map[string]bool{}
	for _, m := range regexp.MustCompile(`\((HOLDFAST_[A-Z0-9_]+)\)`).FindAllStringSubmatch(string(out), -1) {
		env[m[1]] = true
	}
	if len(env) < 5 {
		t.Fatalf("holdfast %s --help lists no variables:\n%s", cmd, out)
	}
	return env
}

// TestKubernetesManifests decodes every YAML document under deploy/ and checks what a
// cluster would only tell at apply time, or in an incident: selectors that match, probes
// on ports that exist, the drain inside the grace period, a disruption budget for every
// workload, resources, a locked-down security context, and only variables holdfast reads.
func TestKubernetesManifests(t *testing.T) {
	root := filepath.Join(repoRoot, "deploy")
	kust := decodeAll(t, filepath.Join(root, "kustomization.yaml"))
	if len(kust) != 1 || str(kust[0].m, "kind") != "Kustomization" {
		t.Fatalf("kustomization.yaml: %v", kust)
	}
	files := []string{filepath.Join(root, "k8s", "certificates.yaml")} // optional, parsed all the same
	for _, r := range list(kust[0].m, "resources") {
		files = append(files, filepath.Join(root, r.(string)))
	}
	for _, g := range list(kust[0].m, "configMapGenerator") {
		for _, f := range list(g, "files") {
			_, path, ok := strings.Cut(f.(string), "=")
			if !ok {
				path = f.(string)
			}
			if _, err := os.Stat(filepath.Join(root, path)); err != nil {
				t.Errorf("configMapGenerator %s: %v", str(g, "name"), err)
			}
		}
	}
	var docs []doc
	for _, f := range files {
		docs = append(docs, decodeAll(t, f)...)
	}
	var workloads, pdbs, services []doc
	for _, d := range docs {
		if str(d.m, "apiVersion") == "" || str(d.m, "kind") == "" || str(d.m, "metadata", "name") == "" {
			t.Errorf("%s: a document without apiVersion, kind or metadata.name", d.file)
		}
		switch str(d.m, "kind") {
		case "Deployment", "StatefulSet":
			workloads = append(workloads, d)
		case "PodDisruptionBudget":
			pdbs = append(pdbs, d)
		case "Service":
			services = append(services, d)
		}
	}
	if len(workloads) != 3 {
		t.Fatalf("want the NATS StatefulSet and the two Deployments, got %v", workloads)
	}
	env := map[string]map[string]bool{"objects": holdfastEnv(t, "objects"), "gateway": holdfastEnv(t, "gateway")}
	for _, w := range workloads {
		checkWorkload(t, w, env)
		labels, _ := get(w.m, "spec", "template", "metadata", "labels").(map[string]any)
		covered := false
		for _, p := range pdbs {
			sel, _ := get(p.m, "spec", "selector", "matchLabels").(map[string]any)
			covered = covered || matches(sel, labels)
		}
		if !covered {
			t.Errorf("%s: no PodDisruptionBudget selects it", w)
		}
	}
	for _, s := range services {
		sel, _ := get(s.m, "spec", "selector").(map[string]any)
		var target *doc
		for i, w := range workloads {
			labels, _ := get(w.m, "spec", "template", "metadata", "labels").(map[string]any)
			if matches(sel, labels) {
				target = &workloads[i]
			}
		}
		if target == nil {
			t.Errorf("%s: its selector matches no workload", s)
			continue
		}
		named := containerPorts(list(target.m, "spec", "template", "spec", "containers"))
		for _, p := range list(s.m, "spec", "ports") {
			if tp := str(p, "targetPort"); tp != "" && !named[tp] {
				t.Errorf("%s: targetPort %q is not a port of %s", s, tp, target)
			}
		}
	}
}

func matches(sel, labels map[string]any) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func containerPorts(containers []any) map[string]bool {
	named := map[string]bool{}
	for _, c := range containers {
		for _, p := range list(c, "ports") {
			named[str(p, "name")] = true
			if n, ok := get(p, "containerPort").(int); ok {
				named[strconv.Itoa(n)] = true
			}
		}
	}
	return named
}

// checkWorkload checks one Deployment or StatefulSet.
func checkWorkload(t *testing.T, w doc, env map[string]map[string]bool) {
	t.Helper()
	spec := get(w.m, "spec", "template", "spec")
	sel, _ := get(w.m, "spec", "selector", "matchLabels").(map[string]any)
	labels, _ := get(w.m, "spec", "template", "metadata", "labels").(map[string]any)
	if !matches(sel, labels) {
		t.Errorf("%s: spec.selector does not match the template's labels", w)
	}
	if get(spec, "securityContext", "runAsNonRoot") != true || str(spec, "securityContext", "seccompProfile", "type") != "RuntimeDefault" {
		t.Errorf("%s: the pod must run as non-root with the RuntimeDefault seccomp profile", w)
	}
	grace, _ := get(spec, "terminationGracePeriodSeconds").(int)
	volumes := map[string]bool{}
	for _, v := range list(spec, "volumes") {
		volumes[str(v, "name")] = true
	}
	for _, v := range list(w.m, "spec", "volumeClaimTemplates") {
		volumes[str(v, "metadata", "name")] = true
	}
	containers := list(spec, "containers")
	ports := containerPorts(containers)
	for _, c := range containers {
		name := str(c, "name")
		where := fmt.Sprintf("%s container %s", w, name)
		if str(c, "image") == "" {
			t.Errorf("%s: no image", where)
		}
		for _, r := range []string{"requests/cpu", "requests/memory", "limits/memory"} {
			a, b, _ := strings.Cut(r, "/")
			if str(c, "resources", a, b) == "" {
				t.Errorf("%s: no resources.%s.%s", where, a, b)
			}
		}
		if get(c, "securityContext", "allowPrivilegeEscalation") != false || get(c, "securityContext", "readOnlyRootFilesystem") != true ||
			fmt.Sprint(get(c, "securityContext", "capabilities", "drop")) != "[ALL]" {
			t.Errorf("%s: want allowPrivilegeEscalation false, readOnlyRootFilesystem true, capabilities dropped", where)
		}
		for _, probe := range []string{"readinessProbe", "livenessProbe"} {
			p := get(c, probe)
			if p == nil {
				t.Errorf("%s: no %s", where, probe)
				continue
			}
			port := str(p, "httpGet", "port") + str(p, "tcpSocket", "port")
			if !ports[port] {
				t.Errorf("%s: %s on port %q, which the container does not open", where, probe, port)
			}
		}
		for _, m := range list(c, "volumeMounts") {
			if !volumes[str(m, "name")] {
				t.Errorf("%s: mounts %q, which is no volume", where, str(m, "name"))
			}
		}
		args := list(c, "args")
		if len(args) == 0 {
			t.Errorf("%s: no args", where)
			continue
		}
		cmd, _ := args[0].(string)
		known := env[cmd]
		if known == nil {
			continue // nats-server
		}
		// Holdfast: every variable is one it reads, the drain fits in the grace period,
		// and the readiness is /healthz.
		set := map[string]string{}
		for _, e := range list(c, "env") {
			n := str(e, "name")
			set[n] = str(e, "value")
			if strings.HasPrefix(n, "HOLDFAST_") && !known[n] {
				t.Errorf("%s: %s is not a variable of holdfast %s", where, n, cmd)
			}
		}
		for _, must := range []string{"HOLDFAST_NATS", "HOLDFAST_NATS_NKEY", "HOLDFAST_NATS_TLS_CA", "HOLDFAST_METRICS_LISTEN"} {
			if set[must] == "" {
				t.Errorf("%s: %s not set", where, must)
			}
		}
		if set["HOLDFAST_REPLICAS"] != "3" {
			t.Errorf("%s: HOLDFAST_REPLICAS %q, want 3 on a 3-node cluster", where, set["HOLDFAST_REPLICAS"])
		}
		if str(c, "readinessProbe", "httpGet", "path") != "/healthz" {
			t.Errorf("%s: readiness is not /healthz", where)
		}
		preStop, _ := get(c, "lifecycle", "preStop", "sleep", "seconds").(int)
		// The CLI gives a draining process 15 s (cli.go), after preStop's wait.
		if grace < preStop+15+5 {
			t.Errorf("%s: terminationGracePeriodSeconds %d < preStop %d s + 15 s drain + 5 s margin", where, grace, preStop)
		}
		if cmd == "gateway" && preStop == 0 {
			t.Errorf("%s: no preStop wait: the Service would still send clients to a draining gateway", where)
		}
	}
}

// unit is a parsed systemd unit file: section → key → values (repeatable keys).
type unit map[string]map[string][]string

func parseUnit(t *testing.T, path string) unit {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unit{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not a key=value in a section: %q", path, n, line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	return u
}

// TestSystemdUnits checks the units: hardening on, a stop timeout that holds the drain,
// only variables holdfast reads; and, where systemd-analyze exists, that systemd accepts
// them and rates their exposure 2.0 or lower.
func TestSystemdUnits(t *testing.T) {
	dir := filepath.Join(repoRoot, "deploy", "systemd")
	units, _ := filepath.Glob(filepath.Join(dir, "*.service"))
	if len(units) != 3 {
		t.Fatalf("units: %v", units)
	}
	hardening := []string{"NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", "PrivateDevices=yes",
		"ProtectKernelTunables=yes", "ProtectKernelModules=yes", "ProtectControlGroups=yes", "RestrictNamespaces=yes",
		"RestrictSUIDSGID=yes", "LockPersonality=yes", "MemoryDenyWriteExecute=yes", "SystemCallArchitectures=native",
		"CapabilityBoundingSet=", "UMask=0077"}
	for _, path := range units {
		u := parseUnit(t, path)
		name := filepath.Base(path)
		svc := u["Service"]
		for _, h := range hardening {
			k, v, _ := strings.Cut(h, "=")
			if len(svc[k]) == 0 || svc[k][len(svc[k])-1] != v {
				t.Errorf("%s: want %s", name, h)
			}
		}
		exec := strings.Fields(svc["ExecStart"][0])
		stop, err := strconv.Atoi(strings.TrimSuffix(svc["TimeoutStopSec"][0], "s"))
		if err != nil || stop < 30 {
			t.Errorf("%s: TimeoutStopSec %v: want at least 30 s (the drain takes up to 15 s)", name, svc["TimeoutStopSec"])
		}
		if filepath.Base(exec[0]) != "holdfast" {
			continue
		}
		if !testing.Short() {
			known := holdfastEnv(t, exec[1])
			for _, e := range svc["Environment"] {
				k, _, _ := strings.Cut(e, "=")
				if strings.HasPrefix(k, "HOLDFAST_") && !known[k] {
					t.Errorf("%s: %s is not a variable of holdfast %s", name, k, exec[1])
				}
			}
		}
		if svc["KillSignal"][0] != "SIGTERM" {
			t.Errorf("%s: KillSignal %v: holdfast drains on SIGTERM", name, svc["KillSignal"])
		}
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("no systemd-analyze here: the units were parsed, not verified")
		return
	}
	skipShort(t)
	tmp := t.TempDir()
	for _, path := range units {
		b, _ := os.ReadFile(path)
		s := strings.ReplaceAll(string(b), "/usr/local/bin/holdfast", holdfastBin)
		s = strings.ReplaceAll(s, "/usr/local/bin/nats-server", natsServerBin)
		name := strings.Replace(filepath.Base(path), "@.service", "@n1.service", 1)
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(analyze, "verify", p).CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Errorf("systemd-analyze verify %s: %v\n%s", name, err, out)
		}
		out, err := exec.Command(analyze, "security", "--offline=true", p).CombinedOutput()
		m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`).FindSubmatch(out)
		if err != nil || m == nil {
			t.Errorf("systemd-analyze security %s: %v\n%s", name, err, out)
			continue
		}
		if level, _ := strconv.ParseFloat(string(m[1]), 64); level > 2.0 {
			t.Errorf("%s: exposure %.1f, want 2.0 or lower\n%s", name, level, out)
		}
	}
}

// TestNATSConfigs has nats-server check both of deploy's server configs (machines and
// Kubernetes), with real keys and certificates in place of the operator's.
func TestNATSConfigs(t *testing.T) {
	skipShort(t)
	tmp := t.TempDir()
	ca, cert, key := certs(t, tmp)
	src := filepath.Join(repoRoot, "deploy", "nats")
	for _, f := range []string{"accounts.conf", "permissions.conf"} {
		copyFile(t, filepath.Join(src, f), filepath.Join(tmp, f))
	}
	writeNKeys(t, tmp)
	for _, c := range []struct{ file, env string }{
		{filepath.Join(src, "nats-server.conf"), "NATS_SERVER_NAME=n1"},
		{filepath.Join(repoRoot, "deploy", "k8s", "nats.conf"), "POD_NAME=nats-0"},
	} {
		b, err := os.ReadFile(c.file)
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		for _, r := range []struct{ from, to string }{
			{"/etc/nats/tls/ca.pem", ca}, {"/etc/nats/tls/server.pem", cert}, {"/etc/nats/tls/server-key.pem", key},
			{"/etc/nats-tls/ca.crt", ca}, {"/etc/nats-tls/tls.crt", cert}, {"/etc/nats-tls/tls.key", key},
			{"/var/lib/nats/jetstream", filepath.Join(tmp, "js")}, {"/data/jetstream", filepath.Join(tmp, "js")},
			{"/var/run/nats/nats.pid", filepath.Join(tmp, "nats.pid")},
		} {
			s = strings.ReplaceAll(s, r.from, r.to)
		}
		if strings.Contains(s, "/etc/") || strings.Contains(s, "/var/") || strings.Contains(s, "\"/data") {
			t.Fatalf("%s: a path this test does not replace:\n%s", c.file, s)
		}
		p := filepath.Join(tmp, filepath.Base(c.file))
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(natsServerBin, "-t", "-c", p)
		cmd.Env = append(os.Environ(), c.env)
		if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "is valid") {
			t.Errorf("nats-server -t %s: %v\n%s", filepath.Base(c.file), err, out)
		}
	}
	// The example of the public keys lists every user accounts.conf names.
	ex, err := os.ReadFile(filepath.Join(src, "nkeys.conf.example"))
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if !strings.Contains(string(ex), u+"_NKEY:") {
			t.Errorf("nkeys.conf.example lacks %s_NKEY", u)
		}
	}
}
