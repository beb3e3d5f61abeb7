package sigv4

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

const (
	exampleAK = "AKIAIOSFODNN7EXAMPLE"
	exampleSK = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
)

func exampleVerifier() *Verifier {
	return &Verifier{
		Secret: func(ak string) (string, bool) { return exampleSK, ak == exampleAK },
		Now:    func() time.Time { return time.Date(2013, 5, 24, 0, 5, 0, 0, time.UTC) },
	}
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || e.Code != code {
		t.Fatalf("got %v, want %s", err, code)
	}
}

// The examples of AWS's "Signature Calculations for the Authorization Header" page.
func TestAWSExampleGetObject(t *testing.T) {
	r := httptest.NewRequest("GET", "http://examplebucket.s3.amazonaws.com/test.txt", nil)
	r.Header.Set("Range", "bytes=0-9")
	r.Header.Set("X-Amz-Content-Sha256", emptySHA256)
	r.Header.Set("X-Amz-Date", "20130524T000000Z")
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
	v := exampleVerifier()
	res, err := v.Verify(r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(res.Body); err != nil {
		t.Fatal(err)
	}
	// Tampering fails.
	r.Header.Set("Range", "bytes=0-10")
	_, err = v.Verify(r)
	wantCode(t, err, "SignatureDoesNotMatch")
	r.Header.Set("Range", "bytes=0-9")
	// Clock skew.
	v.Now = func() time.Time { return time.Date(2013, 5, 24, 0, 16, 0, 0, time.UTC) }
	_, err = v.Verify(r)
	wantCode(t, err, "RequestTimeTooSkewed")
	// Unknown key.
	v = exampleVerifier()
	r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), exampleAK, "AKIDUNKNOWN", 1))
	_, err = v.Verify(r)
	wantCode(t, err, "InvalidAccessKeyId")
}

func TestAWSExamplePutObject(t *testing.T) {
	body := "Welcome to Amazon S3."
	r := httptest.NewRequest("PUT", "http://examplebucket.s3.amazonaws.com/test%24file.text", strings.NewReader(body))
	r.Header.Set("Date", "Fri, 24 May 2013 00:00:00 GMT")
	r.Header.Set("X-Amz-Date", "20130524T000000Z")
	r.Header.Set("X-Amz-Storage-Class", "REDUCED_REDUNDANCY")
	r.Header.Set("X-Amz-Content-Sha256", "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072")
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd")
	res, err := exampleVerifier().Verify(r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(res.Body)
	if err != nil || string(got) != body {
		t.Fatal(string(got), err)
	}
	// A body that does not match the signed digest fails at EOF.
	r.Body = io.NopCloser(strings.NewReader("Welcome to Amazon S3!"))
	res, err = exampleVerifier().Verify(r)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(res.Body)
	wantCode(t, err, "XAmzContentSHA256Mismatch")
}

func TestAWSExamplePresigned(t *testing.T) {
	u := "http://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
	r := httptest.NewRequest("GET", u, nil)
	v := exampleVerifier()
	if _, err := v.Verify(r); err != nil {
		t.Fatal(err)
	}
	v.Now = func() time.Time { return time.Date(2013, 5, 25, 0, 0, 1, 0, time.UTC) }
	_, err := v.Verify(r)
	wantCode(t, err, "AccessDenied")
	r = httptest.NewRequest("GET", strings.Replace(u, "Expires=86400", "Expires=604801", 1), nil)
	_, err = exampleVerifier().Verify(r)
	wantCode(t, err, "AuthorizationQueryParametersError")
	r = httptest.NewRequest("GET", strings.Replace(u, "test.txt", "test2.txt", 1), nil)
	_, err = exampleVerifier().Verify(r)
	wantCode(t, err, "SignatureDoesNotMatch")
}

// AWS's chunked upload example: 65536 + 1024 bytes of 'a' in signed chunks.
func exampleChunkedBody(sig1 string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "10000;chunk-signature=%s\r\n%s\r\n", sig1, strings.Repeat("a", 65536))
	fmt.Fprintf(&b, "400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n%s\r\n", strings.Repeat("a", 1024))
	fmt.Fprintf(&b, "0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n")
	return b.String()
}

func exampleChunkedRequest(body string) *http.Request {
	r := httptest.NewRequest("PUT", "http://s3.amazonaws.com/examplebucket/chunkObject.txt", strings.NewReader(body))
	r.Header.Set("X-Amz-Date", "20130524T000000Z")
	r.Header.Set("X-Amz-Storage-Class", "REDUCED_REDUNDANCY")
	r.Header.Set("Content-Encoding", "aws-chunked")
	r.Header.Set("X-Amz-Decoded-Content-Length", "66560")
	r.Header.Set("Content-Length", "66824")
	r.ContentLength = 66824
	r.Header.Set("X-Amz-Content-Sha256", StreamingSigned)
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9")
	return r
}

func TestAWSExampleChunked(t *testing.T) {
	good := exampleChunkedBody("ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648")
	if len(good) != 66824 {
		t.Fatalf("example body is %d bytes", len(good))
	}
	res, err := exampleVerifier().Verify(exampleChunkedRequest(good))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(res.Body)
	if err != nil || string(got) != strings.Repeat("a", 66560) {
		t.Fatal(len(got), err)
	}
	// A wrong chunk signature.
	bad := exampleChunkedBody("ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288649")
	res, _ = exampleVerifier().Verify(exampleChunkedRequest(bad))
	_, err = io.ReadAll(res.Body)
	wantCode(t, err, "SignatureDoesNotMatch")
	// Tampered data.
	tampered := strings.Replace(good, "aaaa\r\n400", "aaab\r\n400", 1)
	res, _ = exampleVerifier().Verify(exampleChunkedRequest(tampered))
	_, err = io.ReadAll(res.Body)
	wantCode(t, err, "SignatureDoesNotMatch")
	// Truncated.
	res, _ = exampleVerifier().Verify(exampleChunkedRequest(good[:40000]))
	_, err = io.ReadAll(res.Body)
	wantCode(t, err, "IncompleteBody")
}

func TestUnsignedTrailer(t *testing.T) {
	data := strings.Repeat("hello world ", 1000)
	h := NewChecksum(CRC32)
	h.Write([]byte(data))
	sum := EncodeSum(h.Sum(nil))
	body := fmt.Sprintf("2000\r\n%s\r\n%x\r\n%s\r\n0\r\nx-amz-checksum-crc32:%s\r\n\r\n", data[:0x2000], len(data)-0x2000, data[0x2000:], sum)
	r := httptest.NewRequest("PUT", "http://localhost/b/k", strings.NewReader(body))
	r.Header.Set("X-Amz-Date", "20130524T000000Z")
	r.Header.Set("X-Amz-Content-Sha256", StreamingUnsignedTrl)
	r.Header.Set("X-Amz-Trailer", "x-amz-checksum-crc32")
	r.Header.Set("X-Amz-Decoded-Content-Length", fmt.Sprint(len(data)))
	Sign(r, exampleAK, exampleSK, "us-east-1", time.Date(2013, 5, 24, 0, 0, 0, 0, time.UTC))
	res, err := exampleVerifier().Verify(r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(res.Body)
	if err != nil || string(got) != data {
		t.Fatal(err)
	}
	if res.Trailer.Get("x-amz-checksum-crc32") != sum {
		t.Fatal(res.Trailer)
	}
}

func TestChecksumVectors(t *testing.T) {
	want := map[string]string{
		CRC32:     "cbf43926",
		CRC32C:    "e3069283",
		CRC64NVME: "ae8b14860a799888",
		SHA1:      "f7c3bc1d808e04732adf679965ccc34ca7ae3441",
		SHA256:    "15e2b0d3c33891ebb0f1ef609ec419420c20e320ce94c65fbc8c3312448eb225",
	}
	for alg, w := range want {
		h := NewChecksum(alg)
		h.Write([]byte("123456789"))
		if got := hex.EncodeToString(h.Sum(nil)); got != w {
			t.Errorf("%s: %s, want %s", alg, got, w)
		}
	}
}

func TestEncode(t *testing.T) {
	if got := EncodePath("/a b/c+d/é~*"); got != "/a%20b/c%2Bd/%C3%A9~%2A" {
		t.Fatal(got)
	}
	if got := canonicalQuery("b=2&a=1&a=0&prefix=x%2Fy&list-type=2&empty", false); got != "a=0&a=1&b=2&empty=&list-type=2&prefix=x%2Fy" {
		t.Fatal(got)
	}
}

func TestSignRoundTrip(t *testing.T) {
	v := &Verifier{Secret: func(ak string) (string, bool) { return "secret", ak == "ak" }}
	r := httptest.NewRequest("GET", "http://bucket.localhost:8788/some%20key/x?uploads&prefix=a%2Bb", nil)
	r.Header.Set("X-Amz-Content-Sha256", UnsignedPayload)
	Sign(r, "ak", "secret", "eu-west-1", time.Now())
	if _, err := v.Verify(r); err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "Signature=", "Signature=0", 1)[:len(r.Header.Get("Authorization"))])
	_, err := v.Verify(r)
	wantCode(t, err, "SignatureDoesNotMatch")
	// Anonymous.
	_, err = v.Verify(httptest.NewRequest("GET", "http://localhost/", nil))
	wantCode(t, err, "AccessDenied")
}

func FuzzChunked(f *testing.F) {
	f.Add([]byte(exampleChunkedBody("ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648")), true)
	f.Add([]byte("5\r\nhello\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n"), false)
	f.Add([]byte("ffffffffffffffff\r\n"), false)
	f.Fuzz(func(t *testing.T, body []byte, signed bool) {
		cr := &chunkedReader{r: newLineReader(bytes.NewReader(body)), signed: signed, trailer: true, want: -1, out: http.Header{}, allowed: []string{"x-amz-checksum-crc32"}}
		if signed {
			cr.key, cr.prevSig, cr.stsPrefix = []byte("k"), "seed", "x\n"
		}
		n, _ := io.Copy(io.Discard, io.LimitReader(cr, 1<<20))
		if n > int64(len(body)) {
			t.Fatalf("decoded %d bytes from %d", n, len(body))
		}
	})
}

func FuzzParseAuthorization(f *testing.F) {
	f.Add("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
	f.Add("AWS AK:sig")
	f.Add("AWS4-HMAC-SHA256 Credential=a/b/c/d/e")
	f.Fuzz(func(t *testing.T, h string) {
		p, err := parseAuthorization(h)
		if err == nil && (p.accessKey == "" || len(p.signature) != 64 || len(p.signedHeaders) == 0) {
			t.Fatalf("accepted %q as %+v", h, p)
		}
	})
}

func FuzzVerify(f *testing.F) {
	f.Add("/test.txt", "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404", "")
	f.Add("/", "", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
	f.Fuzz(func(t *testing.T, path, query, auth string) {
		r, err := http.NewRequest("GET", "http://examplebucket.s3.amazonaws.com/", nil)
		if err != nil {
			return
		}
		r.URL.Path, r.URL.RawQuery = "/"+path, query
		if auth != "" {
			r.Header.Set("Authorization", auth)
			r.Header.Set("X-Amz-Date", "20130524T000000Z")
			r.Header.Set("X-Amz-Content-Sha256", UnsignedPayload)
		}
		res, err := exampleVerifier().Verify(r)
		if err == nil && res.AccessKey != exampleAK {
			t.Fatal("verified without a known key")
		}
	})
}

func TestCombineCRC(t *testing.T) {
	a, b := []byte("hello, multipart "), bytes.Repeat([]byte("world"), 3001)
	for _, alg := range []string{CRC32, CRC32C, CRC64NVME} {
		sum := func(p ...[]byte) []byte {
			h := NewChecksum(alg)
			for _, x := range p {
				h.Write(x)
			}
			return h.Sum(nil)
		}
		got, ok := CombineCRC(alg, sum(a), sum(b), int64(len(b)))
		if !ok || !bytes.Equal(got, sum(a, b)) {
			t.Errorf("%s: combined %x, want %x", alg, got, sum(a, b))
		}
	}
	if _, ok := CombineCRC(SHA256, nil, nil, 1); ok {
		t.Fatal("SHA256 cannot be combined")
	}
}
