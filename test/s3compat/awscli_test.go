package s3compat

import (
	"bytes"
	"crypto/sha256"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestAWSCLI drives the installed aws CLI against the endpoint: cp of a 20 MiB file up and
// down (multipart, parallel ranged downloads) with a checksum comparison, ls, sync,
// rm --recursive and a presigned URL fetched with curl.
func TestAWSCLI(t *testing.T) {
	if _, err := exec.LookPath("aws"); err != nil {
		t.Skip("aws CLI not installed")
	}
	s := startServer(t, false)
	home := t.TempDir()
	cfg := filepath.Join(home, "config")
	os.WriteFile(cfg, []byte("[default]\nregion = us-east-1\ns3 =\n    addressing_style = path\n    signature_version = s3v4\n"), 0o600)
	env := append(os.Environ(), "HOME="+home, "AWS_CONFIG_FILE="+cfg, "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(home, "nocreds"),
		"AWS_ACCESS_KEY_ID="+accessKey, "AWS_SECRET_ACCESS_KEY="+secretKey, "AWS_DEFAULT_REGION=us-east-1", "AWS_PAGER=")
	aws := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("aws", append([]string{"--endpoint-url", s.URL}, args...)...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "big.bin")
	data := randData(20<<20, 7)
	os.WriteFile(src, data, 0o644)

	aws("s3", "mb", "s3://cli-bucket")
	aws("s3", "cp", src, "s3://cli-bucket/dir/big.bin")
	down := filepath.Join(dir, "down.bin")
	aws("s3", "cp", "s3://cli-bucket/dir/big.bin", down)
	got, _ := os.ReadFile(down)
	if sha256.Sum256(got) != sha256.Sum256(data) {
		t.Fatal("downloaded file differs")
	}
	if out := aws("s3", "ls", "s3://cli-bucket/dir/"); !strings.Contains(out, "20971520 big.bin") {
		t.Fatalf("ls: %s", out)
	}
	// sync a small tree.
	tree := filepath.Join(dir, "tree")
	for _, p := range []string{"a.txt", "sub/b.txt", "sub/deeper/c.txt", "with space.txt"} {
		os.MkdirAll(filepath.Dir(filepath.Join(tree, p)), 0o755)
		os.WriteFile(filepath.Join(tree, p), []byte("content of "+p), 0o644)
	}
	aws("s3", "sync", tree, "s3://cli-bucket/tree/")
	out := aws("s3", "ls", "--recursive", "s3://cli-bucket/tree/")
	for _, p := range []string{"tree/a.txt", "tree/sub/b.txt", "tree/sub/deeper/c.txt", "tree/with space.txt"} {
		if !strings.Contains(out, p) {
			t.Fatalf("sync: %s missing from\n%s", p, out)
		}
	}
	// A second sync uploads nothing.
	if out := aws("s3", "sync", tree, "s3://cli-bucket/tree/"); strings.Contains(out, "upload:") {
		t.Fatalf("second sync uploaded: %s", out)
	}
	back := filepath.Join(dir, "back")
	aws("s3", "sync", "s3://cli-bucket/tree/", back)
	if b, _ := os.ReadFile(filepath.Join(back, "sub/deeper/c.txt")); string(b) != "content of sub/deeper/c.txt" {
		t.Fatal("sync down differs")
	}
	// Presigned URL fetched with curl.
	url := strings.TrimSpace(aws("s3", "presign", "s3://cli-bucket/tree/a.txt", "--expires-in", "300"))
	if _, err := exec.LookPath("curl"); err == nil {
		c, err := exec.Command("curl", "-sf", url).Output()
		if err != nil || !bytes.Equal(c, []byte("content of a.txt")) {
			t.Fatalf("curl presigned: %v %q", err, c)
		}
		if err := exec.Command("curl", "-sf", strings.Replace(url, "a.txt", "b.txt", 1)).Run(); err == nil {
			t.Fatal("tampered presigned URL accepted")
		}
	}
	aws("s3", "rm", "--recursive", "s3://cli-bucket/")
	if out := aws("s3", "ls", "--recursive", "s3://cli-bucket/"); strings.TrimSpace(out) != "" {
		t.Fatalf("after rm: %s", out)
	}
	aws("s3", "rb", "s3://cli-bucket")
}
