package s3compat

import (
	"bytes"
	"context"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

// TestPostPolicy uploads through a browser form with a policy signed by minio-go, and
// checks that a form breaking the policy is refused and stores nothing.
func TestPostPolicy(t *testing.T) {
	s := startServer(t, false)
	c := minioClient(t, s)
	ctx := context.Background()
	if err := c.MakeBucket(ctx, "forms", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	data := randData(2000, 5)
	post := func(modify func(k, v string) string) (*http.Response, string) {
		p := minio.NewPostPolicy()
		p.SetBucket("forms")
		p.SetKey("up/file.bin")
		p.SetExpires(time.Now().Add(time.Hour))
		p.SetContentType("binary/octet-stream")
		p.SetContentLengthRange(10, 1<<20)
		p.SetUserMetadata("who", "form")
		if err := p.SetChecksum(minio.ChecksumCRC32C.ChecksumBytes(data)); err != nil {
			t.Fatal(err)
		}
		u, form, err := c.PresignedPostPolicy(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		for k, v := range form {
			mw.WriteField(k, modify(k, v))
		}
		fw, _ := mw.CreateFormFile("file", "file.bin")
		fw.Write(data)
		mw.Close()
		resp, err := s.Client.Post(u.String(), mw.FormDataContentType(), &buf)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}
	resp, body := post(func(k, v string) string {
		if k == "x-amz-checksum-crc32c" {
			return "AAAAAA=="
		}
		return v
	})
	if resp.StatusCode != 403 || !strings.Contains(body, "Policy Condition failed") {
		t.Fatal(resp.Status, body)
	}
	resp, body = post(func(k, v string) string {
		if k == "x-amz-signature" {
			return strings.Repeat("0", 64)
		}
		return v
	})
	if resp.StatusCode != 403 || !strings.Contains(body, "SignatureDoesNotMatch") {
		t.Fatal(resp.Status, body)
	}
	if _, err := c.StatObject(ctx, "forms", "up/file.bin", minio.StatObjectOptions{}); err == nil {
		t.Fatal("stored despite a broken policy")
	}
	resp, body = post(func(k, v string) string { return v })
	if resp.StatusCode != 204 || resp.Header.Get("X-Amz-Checksum-Crc32c") == "" {
		t.Fatal(resp.Status, body)
	}
	st, err := c.StatObject(ctx, "forms", "up/file.bin", minio.StatObjectOptions{})
	if err != nil || st.Size != int64(len(data)) || st.ContentType != "binary/octet-stream" || st.UserMetadata["Who"] != "form" {
		t.Fatalf("%+v %v", st, err)
	}
}
