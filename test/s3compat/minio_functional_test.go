package s3compat

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// minFunctionalPass is the number of minio-go functional tests that must pass; raise it
// as the endpoint grows. (A fake S3 server, gofakes3 v1.2.0, passes 27.)
const minFunctionalPass = 41

// TestMinioFunctional builds minio-go's own functional test program (functional_tests.go
// in the minio-go module, build tag mint) and runs it in full mode against the endpoint,
// printing how many of its tests pass, fail and are not applicable (NotImplemented).
// HOLDFAST_SKIP_MINT=1 skips it.
func TestMinioFunctional(t *testing.T) {
	if os.Getenv("HOLDFAST_SKIP_MINT") == "1" {
		t.Skip("HOLDFAST_SKIP_MINT=1")
	}
	if testing.Short() {
		t.Skip("short mode")
	}
	dir, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/minio/minio-go/v7").Output()
	if err != nil {
		t.Fatalf("go list minio-go: %v", err)
	}
	src := filepath.Join(strings.TrimSpace(string(dir)), "functional_tests.go")
	bin := filepath.Join(t.TempDir(), "minio-functional")
	// Build it as a file of this module (its directory in the module cache also holds the
	// minio package), from a scratch directory the go tool's ./... ignores.
	scratch, err := os.MkdirTemp(".", "_mint")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(scratch)
	code, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	// With -tags mint the minio package itself would also contain this package main
	// file: drop the constraint from the copy instead.
	code = bytes.Replace(code, []byte("//go:build mint\n"), nil, 1)
	if err := os.WriteFile(filepath.Join(scratch, "functional_tests.go"), code, 0o644); err != nil {
		t.Fatal(err)
	}
	build := exec.Command("go", "build", "-o", bin, "./"+filepath.Join(scratch, "functional_tests.go"))
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", src, err, out)
	}
	s := startServer(t, false)
	cmd := exec.Command(bin)
	cmd.Dir = t.TempDir() // the program leaves scratch files in its working directory
	cmd.Env = append(os.Environ(),
		"SERVER_ENDPOINT="+s.Addr, "ACCESS_KEY="+accessKey, "SECRET_KEY="+secretKey,
		"ENABLE_HTTPS=0", "MINT_MODE=full", "RUN_ON_FAIL=1", "ENABLE_KMS=0", "MINT_DATA_DIR=")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	out, err := cmd.Output()
	if err != nil {
		t.Logf("functional test program: %v\n%s", err, tail(stderr.String(), 2000))
	}
	counts := map[string]int{}
	var failed []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var rec struct {
			Name, Function, Status, Message, Error string
		}
		if json.Unmarshal(sc.Bytes(), &rec) != nil || rec.Status == "" {
			continue
		}
		counts[rec.Status]++
		if rec.Status == "NA" && os.Getenv("HOLDFAST_MINT_VERBOSE") == "1" {
			t.Logf("NA %s [%s]", rec.Name, rec.Function)
		}
		if rec.Status == "FAIL" {
			failed = append(failed, fmt.Sprintf("%s [%s]: %s %s", rec.Name, rec.Function, rec.Message, rec.Error))
		}
	}
	sort.Strings(failed)
	summary := fmt.Sprintf("minio-go functional tests: %d PASS, %d FAIL, %d NA (not implemented) in %s",
		counts["PASS"], counts["FAIL"], counts["NA"], time.Since(start).Round(time.Second))
	fmt.Println(summary)
	t.Log(summary)
	for _, f := range failed {
		t.Log("FAIL " + f)
	}
	if counts["PASS"] < minFunctionalPass {
		t.Errorf("only %d functional tests passed, want at least %d", counts["PASS"], minFunctionalPass)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
