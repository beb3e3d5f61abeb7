package s3compat

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// TestPresignedRejections: an expired presigned PUT, one signed with an unknown key and one
// with a wrong secret are refused with S3's errors, and store nothing.
func TestPresignedRejections(t *testing.T) {
	s := startServer(t, false)
	c := sdkClient(s, true, secretKey)
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("rej")}); err != nil {
		t.Fatal(err)
	}
	presign := func(ak, sk string, at time.Time, expires string) string {
		req, _ := http.NewRequest("PUT", s.URL+"/rej/obj?X-Amz-Expires="+expires, nil)
		u, _, err := v4.NewSigner().PresignHTTP(ctx, aws.Credentials{AccessKeyID: ak, SecretAccessKey: sk}, req, "UNSIGNED-PAYLOAD", "s3", "us-east-1", at)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	for _, tc := range []struct {
		name, url, code string
		status          int
	}{
		{"expired", presign(accessKey, secretKey, time.Now().Add(-2*time.Hour), "3600"), "AccessDenied", 403},
		{"unknown key", presign("nobody", secretKey, time.Now(), "3600"), "InvalidAccessKeyId", 403},
		{"wrong secret", presign(accessKey, "nope", time.Now(), "3600"), "SignatureDoesNotMatch", 403},
		{"too long", presign(accessKey, secretKey, time.Now(), "604801"), "AuthorizationQueryParametersError", 400},
	} {
		req, _ := http.NewRequest("PUT", tc.url, strings.NewReader("data"))
		resp, err := s.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.Contains(string(b), "<Code>"+tc.code+"</Code>") {
			t.Errorf("%s: %s %s", tc.name, resp.Status, b)
		}
	}
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("rej"), Key: aws.String("obj")}); !isStatus(err, 404) {
		t.Fatalf("stored: %v", err)
	}
	// The same presigned PUT, valid, works.
	req, _ := http.NewRequest("PUT", presign(accessKey, secretKey, time.Now(), "60"), strings.NewReader("data"))
	resp, err := s.Client.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatal(resp.Status, err)
	}
	resp.Body.Close()
}
