package s3compat

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

func sdkClient(s *server, pathStyle bool, secret string) *s3.Client {
	return s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(strings.Replace(s.URL, "127.0.0.1", "localhost", 1)),
		UsePathStyle: pathStyle,
		Credentials:  credentials.NewStaticCredentialsProvider(accessKey, secret, ""),
		HTTPClient:   s.Client,
	})
}

func randData(n int, seed int64) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	if err == nil {
		return ""
	}
	return "?" + err.Error()
}

func md5hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

func TestAWSSDK(t *testing.T) {
	for _, tc := range []struct {
		name       string
		tls, path  bool
		bucketName string
	}{
		{"http-path", false, true, "sdk-http-path"},
		{"http-vhost", false, false, "sdk-http-vhost"},
		{"https-path", true, true, "sdk-https-path"},
		{"https-vhost", true, false, "sdk-https-vhost"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, tc.tls)
			sdkSuite(t, s, sdkClient(s, tc.path, secretKey), tc.bucketName)
			if tc.tls && s.seen("STREAMING-UNSIGNED-PAYLOAD-TRAILER") == 0 {
				t.Errorf("the trailer path did not run: %v", s.modes)
			}
			if tc.tls {
				// An unseekable body of unknown length: aws-chunked with a trailer over
				// Transfer-Encoding: chunked, no Content-Length.
				c := sdkClient(s, tc.path, secretKey)
				data := randData(3<<20+17, 9)
				if _, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("stream"), Key: aws.String("k"), Body: io.MultiReader(bytes.NewReader(data))}); apiCode(err) != "NoSuchBucket" {
					t.Fatal(err)
				}
				c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("stream")})
				if _, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("stream"), Key: aws.String("k"), Body: io.MultiReader(bytes.NewReader(data))}); err != nil {
					t.Fatal(err)
				}
				got, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String("stream"), Key: aws.String("k")})
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(got.Body)
				if !bytes.Equal(b, data) {
					t.Fatal("streamed body differs")
				}
				if s.seen("te:chunked") == 0 {
					t.Error("no Transfer-Encoding: chunked request seen")
				}
			}
			s.mu.Lock()
			for m, n := range s.modes {
				if len(m) != 64 {
					t.Logf("payload mode %q: %d requests", m, n)
				}
			}
			s.mu.Unlock()
		})
	}
}

func sdkSuite(t *testing.T, s *server, c *s3.Client, bucket string) {
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket}); apiCode(err) != "BucketAlreadyOwnedByYou" {
		t.Fatalf("create twice: %v", err)
	}
	if _, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &bucket}); err != nil {
		t.Fatal(err)
	}
	lb, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil || len(lb.Buckets) != 1 || *lb.Buckets[0].Name != bucket {
		t.Fatal(lb, err)
	}

	// Small object with metadata.
	small := []byte("hello, holdfast")
	put, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("dir/hello.txt"), Body: bytes.NewReader(small),
		ContentType: aws.String("text/plain"), Metadata: map[string]string{"owner": "alice"}})
	if err != nil {
		t.Fatal(err)
	}
	if *put.ETag != `"`+md5hex(small)+`"` {
		t.Fatal(*put.ETag)
	}
	got, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("dir/hello.txt")})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(got.Body)
	got.Body.Close()
	if string(b) != string(small) || *got.ContentType != "text/plain" || got.Metadata["owner"] != "alice" {
		t.Fatal(string(b), got.ContentType, got.Metadata)
	}

	// 20 MiB streamed with an unknown-length reader: over HTTPS the SDK sends aws-chunked
	// with a trailing CRC32 checksum.
	big := randData(20<<20, 1)
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("big.bin"), Body: bytes.NewReader(big), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c}); err != nil {
		t.Fatal(err)
	}
	got, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("big.bin"), ChecksumMode: types.ChecksumModeEnabled})
	if err != nil {
		t.Fatal(err)
	}
	b, err = io.ReadAll(got.Body)
	got.Body.Close()
	if err != nil || !bytes.Equal(b, big) {
		t.Fatal("big body differs", err)
	}
	if got.ChecksumCRC32C == nil {
		t.Fatal("no CRC32C returned")
	}
	// Ranges and conditionals.
	got, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("big.bin"), Range: aws.String("bytes=1048576-2097151")})
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(got.Body)
	got.Body.Close()
	if !bytes.Equal(b, big[1<<20:2<<20]) || *got.ContentRange != fmt.Sprintf("bytes 1048576-2097151/%d", len(big)) {
		t.Fatal("range differs", *got.ContentRange)
	}
	got, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("big.bin"), Range: aws.String("bytes=-10")})
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(got.Body)
	got.Body.Close()
	if !bytes.Equal(b, big[len(big)-10:]) {
		t.Fatal("suffix range differs")
	}
	etag := `"` + md5hex(big) + `"`
	if _, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("big.bin"), IfNoneMatch: aws.String(etag)}); !isStatus(err, 304) {
		t.Fatalf("If-None-Match: %v", err)
	}
	if _, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("big.bin"), IfMatch: aws.String(`"nope"`)}); apiCode(err) != "PreconditionFailed" {
		t.Fatalf("If-Match: %v", err)
	}
	if _, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("big.bin"), Range: aws.String("bytes=99999999-")}); apiCode(err) != "InvalidRange" {
		t.Fatalf("bad range: %v", err)
	}
	head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("big.bin")})
	if err != nil || *head.ContentLength != int64(len(big)) || *head.ETag != etag {
		t.Fatal(head, err)
	}
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("missing")}); !isStatus(err, 404) {
		t.Fatal(err)
	}
	if _, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("missing")}); apiCode(err) != "NoSuchKey" {
		t.Fatal(err)
	}
	if _, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("no-such-bucket"), Key: aws.String("x")}); apiCode(err) != "NoSuchBucket" {
		t.Fatal(err)
	}

	// Multipart: parts uploaded concurrently and out of order.
	mp, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: aws.String("multi.bin"), ContentType: aws.String("application/x-multi")})
	if err != nil {
		t.Fatal(err)
	}
	const partSize = 5 << 20
	whole := randData(3*partSize+1234, 2)
	parts := make([]types.CompletedPart, 4)
	var wg sync.WaitGroup
	for _, i := range []int{3, 1, 0, 2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			end := min((i+1)*partSize, len(whole))
			up, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: aws.String("multi.bin"), UploadId: mp.UploadId,
				PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(whole[i*partSize : end])})
			if err != nil {
				t.Error(err)
				return
			}
			parts[i] = types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: up.ETag}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	lp, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: &bucket, Key: aws.String("multi.bin"), UploadId: mp.UploadId})
	if err != nil || len(lp.Parts) != 4 {
		t.Fatal(lp, err)
	}
	lu, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &bucket})
	if err != nil || len(lu.Uploads) != 1 || *lu.Uploads[0].UploadId != *mp.UploadId {
		t.Fatal(lu, err)
	}
	done, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: aws.String("multi.bin"), UploadId: mp.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(*done.ETag, `-4"`) {
		t.Fatal(*done.ETag)
	}
	got, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("multi.bin")})
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(got.Body)
	got.Body.Close()
	if !bytes.Equal(b, whole) || *got.ContentType != "application/x-multi" {
		t.Fatal("multipart body differs")
	}
	attrs, err := c.GetObjectAttributes(ctx, &s3.GetObjectAttributesInput{Bucket: &bucket, Key: aws.String("multi.bin"),
		ObjectAttributes: []types.ObjectAttributes{types.ObjectAttributesEtag, types.ObjectAttributesObjectSize, types.ObjectAttributesObjectParts, types.ObjectAttributesStorageClass}})
	if err != nil || *attrs.ObjectSize != int64(len(whole)) || *attrs.ObjectParts.TotalPartsCount != 4 || len(attrs.ObjectParts.Parts) != 4 || *attrs.ObjectParts.Parts[3].Size != 1234 {
		t.Fatalf("attributes: %+v %v", attrs, err)
	}
	// Abort.
	mp2, _ := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: aws.String("aborted")})
	if _, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &bucket, Key: aws.String("aborted"), UploadId: mp2.UploadId}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: &bucket, Key: aws.String("aborted"), UploadId: mp2.UploadId}); apiCode(err) != "NoSuchUpload" {
		t.Fatal(err)
	}

	// Copy.
	cp, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &bucket, Key: aws.String("dir/copy.txt"), CopySource: aws.String(bucket + "/dir/hello.txt")})
	if err != nil || *cp.CopyObjectResult.ETag != `"`+md5hex(small)+`"` {
		t.Fatal(cp, err)
	}

	// Listing: many keys, delimiter, pagination, start-after, url encoding.
	var keys []string
	for i := range 25 {
		keys = append(keys, fmt.Sprintf("list/%02d key+with space&é", i))
	}
	keys = append(keys, "list/sub/a", "list/sub/b")
	for _, k := range keys {
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String(k), Body: strings.NewReader(k)}); err != nil {
			t.Fatal(err)
		}
	}
	var listed, prefixes []string
	pager := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: aws.String("list/"), Delimiter: aws.String("/"), MaxKeys: aws.Int32(7)})
	pages := 0
	for pager.HasMorePages() {
		p, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, o := range p.Contents {
			listed = append(listed, *o.Key)
		}
		for _, cp := range p.CommonPrefixes {
			prefixes = append(prefixes, *cp.Prefix)
		}
	}
	sort.Strings(keys)
	if fmt.Sprint(listed) != fmt.Sprint(keys[:25]) || fmt.Sprint(prefixes) != "[list/sub/]" || pages != 4 {
		t.Fatalf("v2 listing: %q %q %d", listed, prefixes, pages)
	}
	l2, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: aws.String("list/"), StartAfter: aws.String(keys[22])})
	if err != nil || len(l2.Contents) != 4 || *l2.Contents[0].Key != keys[23] {
		t.Fatal(l2, err)
	}
	l1, err := c.ListObjects(ctx, &s3.ListObjectsInput{Bucket: &bucket, Prefix: aws.String("list/"), MaxKeys: aws.Int32(20)})
	if err != nil || len(l1.Contents) != 20 || !*l1.IsTruncated {
		t.Fatal(l1, err)
	}
	l1, err = c.ListObjects(ctx, &s3.ListObjectsInput{Bucket: &bucket, Prefix: aws.String("list/"), Marker: l1.Contents[19].Key})
	if err != nil || len(l1.Contents) != 7 || *l1.IsTruncated {
		t.Fatal(l1, err)
	}

	// DeleteObjects.
	var ids []types.ObjectIdentifier
	for _, k := range keys {
		ids = append(ids, types.ObjectIdentifier{Key: aws.String(k)})
	}
	del, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: &bucket, Delete: &types.Delete{Objects: ids}})
	if err != nil || len(del.Deleted) != len(keys) || len(del.Errors) != 0 {
		t.Fatal(del, err)
	}
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: aws.String("never-existed")}); err != nil {
		t.Fatal(err)
	}

	// Presigned GET and PUT.
	pc := s3.NewPresignClient(c)
	pg, err := pc.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("dir/hello.txt")}, s3.WithPresignExpires(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := s.Client.Get(pg.URL)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != string(small) {
		t.Fatal(resp.Status, string(b))
	}
	resp, _ = s.Client.Get(strings.Replace(pg.URL, "hello.txt", "hellO.txt", 1))
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatal("tampered presigned URL:", resp.Status)
	}

	// Wrong secret: SignatureDoesNotMatch, and nothing stored.
	bad := sdkClient(s, true, "wrong-secret")
	if _, err := bad.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("evil"), Body: strings.NewReader("x")}); apiCode(err) != "SignatureDoesNotMatch" {
		t.Fatal(err)
	}
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("evil")}); !isStatus(err, 404) {
		t.Fatal("evil stored", err)
	}

	// Delete everything and the bucket.
	if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: &bucket}); apiCode(err) != "BucketNotEmpty" {
		t.Fatal(err)
	}
	for _, k := range []string{"dir/hello.txt", "dir/copy.txt", "big.bin", "multi.bin"} {
		if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: aws.String(k)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: &bucket}); err != nil {
		t.Fatal(err)
	}
}

func isStatus(err error, code int) bool {
	var re interface{ HTTPStatusCode() int }
	return errors.As(err, &re) && re.HTTPStatusCode() == code
}

var _ = http.StatusOK
