package s3compat

import (
	"bytes"
	"context"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

func minioClient(t *testing.T, s *server) *minio.Client {
	u, _ := url.Parse(s.URL)
	c, err := minio.New(u.Host, &minio.Options{
		Creds:     credentials.NewStaticV4(accessKey, secretKey, ""),
		Secure:    u.Scheme == "https",
		Transport: s.Client.Transport,
		Region:    "us-east-1",
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestMinioGo(t *testing.T) {
	s := startServer(t, false)
	c := minioClient(t, s)
	ctx := context.Background()
	if err := c.MakeBucket(ctx, "mc-bucket", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	if ok, err := c.BucketExists(ctx, "mc-bucket"); !ok || err != nil {
		t.Fatal(ok, err)
	}
	// Signed streaming (STREAMING-AWS4-HMAC-SHA256-PAYLOAD) single PUT.
	data := randData(3<<20+5, 3)
	info, err := c.PutObject(ctx, "mc-bucket", "a/b.bin", bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{
		ContentType: "application/x-b", UserMetadata: map[string]string{"color": "red"}})
	if err != nil {
		t.Fatal(err)
	}
	if info.ETag != md5hex(data) {
		t.Fatal(info.ETag)
	}
	// Multipart (unknown size: minio-go buffers parts of 16 MiB).
	bigData := randData(20<<20, 4)
	if _, err := c.PutObject(ctx, "mc-bucket", "a/big.bin", io.MultiReader(bytes.NewReader(bigData)), -1, minio.PutObjectOptions{PartSize: 5 << 20}); err != nil {
		t.Fatal(err)
	}
	obj, err := c.GetObject(ctx, "mc-bucket", "a/big.bin", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(obj)
	if err != nil || !bytes.Equal(got, bigData) {
		t.Fatal("big differs", err)
	}
	st, err := c.StatObject(ctx, "mc-bucket", "a/b.bin", minio.StatObjectOptions{})
	if err != nil || st.Size != int64(len(data)) || st.ContentType != "application/x-b" || st.UserMetadata["Color"] != "red" {
		t.Fatalf("%+v %v", st, err)
	}
	opts := minio.GetObjectOptions{}
	opts.SetRange(100, 199)
	obj, _ = c.GetObject(ctx, "mc-bucket", "a/b.bin", opts)
	got, err = io.ReadAll(obj)
	if err != nil || !bytes.Equal(got, data[100:200]) {
		t.Fatal("range differs", err)
	}
	if _, err := c.CopyObject(ctx, minio.CopyDestOptions{Bucket: "mc-bucket", Object: "c/copy.bin"}, minio.CopySrcOptions{Bucket: "mc-bucket", Object: "a/b.bin"}); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for o := range c.ListObjects(ctx, "mc-bucket", minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		keys = append(keys, o.Key)
	}
	if strings.Join(keys, ",") != "a/b.bin,a/big.bin,c/copy.bin" {
		t.Fatal(keys)
	}
	u, err := c.PresignedGetObject(ctx, "mc-bucket", "a/b.bin", time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := s.Client.Get(u.String())
	if err != nil {
		t.Fatal(err)
	}
	got, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(got, data) {
		t.Fatal("presigned differs", resp.Status)
	}
	objs := make(chan minio.ObjectInfo, 3)
	for _, k := range keys {
		objs <- minio.ObjectInfo{Key: k}
	}
	close(objs)
	for e := range c.RemoveObjects(ctx, "mc-bucket", objs, minio.RemoveObjectsOptions{}) {
		t.Fatal(e.Err)
	}
	if err := c.RemoveBucket(ctx, "mc-bucket"); err != nil {
		t.Fatal(err)
	}
	if s.seen("STREAMING-AWS4-HMAC-SHA256-PAYLOAD") == 0 {
		t.Errorf("signed streaming did not run: %v", s.modes)
	}
}
