package s3compat

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// TestMinioSignedTrailer: minio-go with TrailingHeaders sends
// STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER parts with a signed CRC32C trailer.
func TestMinioSignedTrailer(t *testing.T) {
	s := startServer(t, false)
	c, err := minio.New(strings.TrimPrefix(s.URL, "http://"), &minio.Options{Creds: credentials.NewStaticV4(accessKey, secretKey, ""), TrailingHeaders: true, Transport: s.Client.Transport})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.MakeBucket(ctx, "trailer", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "f")
	data := randData(12<<20, 1)
	os.WriteFile(f, data, 0o644)
	if _, err := c.FPutObject(ctx, "trailer", "obj", f, minio.PutObjectOptions{PartSize: 5 << 20}); err != nil {
		t.Fatal(err)
	}
	if s.seen("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER") == 0 {
		t.Fatalf("signed trailer path not used: %v", s.modes)
	}
	o, _ := c.GetObject(ctx, "trailer", "obj", minio.GetObjectOptions{})
	got, err := io.ReadAll(o)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatal("differs", err)
	}
}
