package s3api

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"hash"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/holdfast/holdfast/internal/blob"
	"github.com/holdfast/holdfast/internal/httprange"
	"github.com/holdfast/holdfast/internal/sigv4"
)

// keyError validates an object key.
func keyError(key string) error {
	if len(key) > 1024 {
		return errKeyTooLong
	}
	if err := blob.CheckKey(key); err != nil {
		return toS3(err)
	}
	return nil
}

// unsupportedHeaders name features this endpoint does not implement; a request carrying
// one is refused rather than half-honoured.
var unsupportedHeaders = []string{"X-Amz-Tagging", "X-Amz-Server-Side-Encryption",
	"X-Amz-Server-Side-Encryption-Customer-Algorithm", "X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id",
	"X-Amz-Object-Lock-Mode", "X-Amz-Object-Lock-Retain-Until-Date", "X-Amz-Object-Lock-Legal-Hold",
	"X-Amz-Website-Redirect-Location", "X-Amz-Grant-Read", "X-Amz-Grant-Write", "X-Amz-Grant-Full-Control",
	"X-Amz-Grant-Read-Acp", "X-Amz-Grant-Write-Acp"}

var keptHeaders = []string{"Content-Encoding", "Content-Disposition", "Content-Language", "Cache-Control", "Expires"}

// putOptions collects what an upload stores besides the bytes.
func (h *handler) putOptions(rq *request) (blob.PutOptions, error) {
	var o blob.PutOptions
	for _, name := range unsupportedHeaders {
		if rq.Header.Get(name) != "" {
			return o, errNotImplemented("the " + strings.ToLower(name) + " header")
		}
	}
	switch sc := rq.Header.Get("X-Amz-Storage-Class"); sc {
	case "", "STANDARD", "REDUCED_REDUNDANCY":
	case "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER", "DEEP_ARCHIVE", "GLACIER_IR", "OUTPOSTS", "EXPRESS_ONEZONE", "SNOW":
		return o, errNotImplemented("storage class " + sc)
	default:
		return o, newErr(400, "InvalidStorageClass", "The storage class you specified is not valid")
	}
	if acl := rq.Header.Get("X-Amz-Acl"); acl != "" && acl != "private" && acl != "bucket-owner-full-control" {
		return o, errNotImplemented("canned ACL " + acl)
	}
	o.ContentType = rq.Header.Get("Content-Type")
	if o.ContentType == "" {
		o.ContentType = "application/octet-stream"
	}
	for _, name := range keptHeaders {
		v := rq.Header.Get(name)
		if name == "Content-Encoding" {
			var keep []string
			for _, t := range strings.Split(v, ",") {
				if t = strings.TrimSpace(t); t != "" && !strings.EqualFold(t, "aws-chunked") {
					keep = append(keep, t)
				}
			}
			v = strings.Join(keep, ",")
		}
		if v != "" {
			if o.Headers == nil {
				o.Headers = map[string]string{}
			}
			o.Headers[name] = v
		}
	}
	size := 0
	for k, vs := range rq.Header {
		lk := strings.ToLower(k)
		if !strings.HasPrefix(lk, "x-amz-meta-") {
			continue
		}
		name := strings.TrimPrefix(lk, "x-amz-meta-")
		v := strings.Join(vs, ",")
		size += len(name) + len(v)
		if o.Meta == nil {
			o.Meta = map[string]string{}
		}
		o.Meta[name] = v
	}
	if size > h.opts.MaxMetadataBytes {
		return o, errMetaTooLarge
	}
	return o, nil
}

// checker verifies the checksum and Content-MD5 a client sent with a body.
type checker struct {
	alg     string
	h       hash.Hash
	want    string // from a header
	trailer bool   // the value comes in the trailer
	md5     []byte
	rq      *request
}

func (h *handler) newChecker(rq *request) (*checker, error) {
	c := &checker{rq: rq}
	for k := range rq.Header {
		lk := strings.ToLower(k)
		if strings.HasPrefix(lk, "x-amz-checksum-") && lk != "x-amz-checksum-type" && lk != "x-amz-checksum-algorithm" && sigv4.AlgorithmOfHeader(lk) == "" {
			return nil, errNotImplemented("the checksum " + lk)
		}
	}
	if t := rq.Header.Get("X-Amz-Checksum-Type"); t != "" && !strings.EqualFold(t, "FULL_OBJECT") {
		return nil, errNotImplemented("checksum type " + t)
	}
	for _, alg := range sigv4.Algorithms {
		if v := rq.Header.Get(sigv4.ChecksumHeader(alg)); v != "" {
			if c.alg != "" {
				return nil, newErr(400, "InvalidRequest", "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.")
			}
			c.alg, c.want = alg, v
		}
	}
	if c.alg == "" {
		for _, t := range strings.Split(strings.Join(rq.Header.Values("X-Amz-Trailer"), ","), ",") {
			if t = strings.TrimSpace(t); t == "" {
				continue
			}
			alg := sigv4.AlgorithmOfHeader(t)
			if alg == "" {
				return nil, errNotImplemented("the trailer " + t)
			}
			c.alg, c.trailer = alg, true
		}
	}
	if c.alg == "" {
		if a := rq.Header.Get("X-Amz-Sdk-Checksum-Algorithm"); a != "" {
			if sigv4.NewChecksum(a) == nil {
				return nil, errNotImplemented("checksum algorithm " + a)
			}
			c.alg = strings.ToUpper(a)
		}
	}
	if c.alg != "" {
		c.h = sigv4.NewChecksum(c.alg)
	}
	if v := rq.Header.Get("Content-Md5"); v != "" {
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil || len(b) != md5.Size {
			return nil, errInvalidDigest
		}
		c.md5 = b
	}
	return c, nil
}

// wrap returns the body to store and its size (-1 if unknown).
// checkedBody is the request's body with its checksum checker.
func (h *handler) checkedBody(rq *request) (*checker, io.Reader, int64, error) {
	c, err := h.newChecker(rq)
	if err != nil {
		return nil, nil, 0, err
	}
	body, size, err := h.body(rq, c)
	return c, body, size, err
}

func (h *handler) body(rq *request, c *checker) (io.Reader, int64, error) {
	size := rq.auth.DecodedLength
	if !rq.auth.Chunked {
		size = rq.ContentLength
	}
	if size > h.opts.MaxObjectSize {
		return nil, 0, errTooLarge
	}
	r := rq.auth.Body
	if size < 0 {
		r = &capReader{r: r, left: h.opts.MaxObjectSize}
	}
	if c != nil && c.h != nil {
		r = io.TeeReader(r, c.h)
	}
	return r, size, nil
}

// check runs once the body is read: the checksum against the header or trailer, and
// Content-MD5 against the body's MD5 (the ETag of a single upload).
func (c *checker) check(etag string, checksums *map[string]string) error {
	if c.md5 != nil && hex.EncodeToString(c.md5) != etag {
		return errBadDigest
	}
	if c.h == nil {
		return nil
	}
	got := sigv4.EncodeSum(c.h.Sum(nil))
	want := c.want
	if c.trailer {
		want = c.rq.auth.Trailer.Get(sigv4.ChecksumHeader(c.alg))
		if want == "" {
			// Plain (non aws-chunked) bodies cannot carry a trailer.
			return newErr(400, "InvalidRequest", "x-amz-trailer needs an aws-chunked body")
		}
	}
	if want != "" && want != got {
		return errChecksum(c.alg)
	}
	if *checksums == nil {
		*checksums = map[string]string{}
	}
	(*checksums)[c.alg] = got
	return nil
}

type capReader struct {
	r    io.Reader
	left int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		var one [1]byte
		if n, _ := c.r.Read(one[:]); n > 0 {
			return 0, errTooLarge
		}
		return c.r.Read(p[:0])
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

func (h *handler) putObject(rq *request) {
	opts, err := h.putOptions(rq)
	if err != nil {
		h.fail(rq, err)
		return
	}
	c, body, size, err := h.checkedBody(rq)
	if err != nil {
		h.fail(rq, err)
		return
	}
	opts.IfMatch = rq.Header.Get("If-Match")
	opts.IfNoneMatch = rq.Header.Get("If-None-Match")
	opts.BeforeCommit = func(info *blob.ObjectInfo) error { return c.check(info.ETag, &info.Checksums) }
	info, err := h.store.PutObject(rq.Context(), rq.bucket, rq.key, body, size, opts)
	if err != nil {
		h.fail(rq, err)
		return
	}
	rq.w.Header().Set("ETag", `"`+info.ETag+`"`)
	for alg, v := range info.Checksums {
		rq.w.Header().Set(sigv4.ChecksumHeader(alg), v)
		rq.w.Header().Set("x-amz-checksum-type", "FULL_OBJECT")
	}
	rq.w.WriteHeader(200)
}

// conditions evaluates If-Match, If-Unmodified-Since, If-None-Match and
// If-Modified-Since the way S3 does (which is RFC 9110's order: internal/httprange).
// prefix is "" or "X-Amz-Copy-Source-"; read says a GET or HEAD, which answers a failed
// If-None-Match or If-Modified-Since with 304 rather than 412.
func conditions(hd http.Header, prefix string, info *blob.ObjectInfo, read bool) error {
	switch httprange.Check(hd, prefix, info.ETag, info.Modified) {
	case httprange.PreconditionFailed:
		return errPrecondition
	case httprange.NotModified:
		if !read {
			return errPrecondition
		}
		return &s3Error{Status: http.StatusNotModified, Code: "NotModified", Message: "Not Modified",
			header: map[string]string{"ETag": `"` + info.ETag + `"`, "Last-Modified": info.Modified.UTC().Format(http.TimeFormat)}}
	}
	return nil
}

// objectRange reads a GetObject's Range (internal/httprange). Like AWS S3 it serves one
// range: several, an unknown unit or a malformed range are ignored (ranged false, the
// whole object, 200), as is a Range under an If-Range that does not match; none
// satisfiable is InvalidRange (416, Content-Range: bytes */size).
func objectRange(hd http.Header, info *blob.ObjectInfo) (rg httprange.Range, ranged bool, err error) {
	v := hd.Get("Range")
	if v == "" || !httprange.IfRange(hd, info.ETag, info.Modified) {
		return rg, false, nil
	}
	rs, err := httprange.Parse(v, info.Size)
	if err != nil {
		return rg, false, &s3Error{Status: http.StatusRequestedRangeNotSatisfiable, Code: "InvalidRange", Message: "The requested range is not satisfiable",
			header: map[string]string{"Content-Range": httprange.Unsatisfied(info.Size)}}
	}
	if len(rs) != 1 {
		return rg, false, nil
	}
	return rs[0], true, nil
}

func (h *handler) objectHeaders(w http.ResponseWriter, info *blob.ObjectInfo) {
	hd := w.Header()
	hd.Set("ETag", `"`+info.ETag+`"`)
	hd.Set("Last-Modified", info.Modified.UTC().Format(http.TimeFormat))
	hd.Set("Content-Type", info.ContentType)
	hd.Set("Accept-Ranges", "bytes")
	for k, v := range info.Headers {
		hd.Set(k, v)
	}
	for k, v := range info.Meta {
		hd["X-Amz-Meta-"+k] = []string{v}
	}
}

var overrides = map[string]string{
	"response-content-type":        "Content-Type",
	"response-content-language":    "Content-Language",
	"response-expires":             "Expires",
	"response-cache-control":       "Cache-Control",
	"response-content-disposition": "Content-Disposition",
	"response-content-encoding":    "Content-Encoding",
}

func (h *handler) getObject(rq *request, head bool) {
	q := rq.URL.Query()
	if v := q.Get("versionId"); v != "" && v != "null" {
		h.fail(rq, newErr(400, "InvalidArgument", "Invalid version id specified"))
		return
	}
	obj, err := h.store.OpenObject(rq.Context(), rq.bucket, rq.key)
	if err != nil {
		h.fail(rq, err)
		return
	}
	info := &obj.Info
	if err := conditions(rq.Header, "", info, true); err != nil {
		h.fail(rq, err)
		return
	}
	off, n, ranged := int64(0), info.Size, false
	if pn := q.Get("partNumber"); pn != "" {
		num, perr := strconv.Atoi(pn)
		if perr != nil || num < 1 || num > blob.MaxParts {
			h.fail(rq, errInvalidArgument("Part number must be an integer between 1 and 10000, inclusive"))
			return
		}
		if info.Parts == 0 {
			if num != 1 {
				h.fail(rq, newErr(416, "InvalidPartNumber", "The requested partnumber is not satisfiable"))
				return
			}
		} else {
			o, l, ok := obj.PartRange(num)
			if !ok {
				h.fail(rq, newErr(416, "InvalidPartNumber", "The requested partnumber is not satisfiable"))
				return
			}
			off, n, ranged = o, l, true
			rq.w.Header().Set("x-amz-mp-parts-count", strconv.Itoa(info.Parts))
			if strings.EqualFold(rq.Header.Get("X-Amz-Checksum-Mode"), "ENABLED") {
				for alg, v := range obj.PartChecksums(num) {
					rq.w.Header().Set(sigv4.ChecksumHeader(alg), v)
				}
			}
		}
	} else {
		rg, ok, err := objectRange(rq.Header, info)
		if err != nil {
			h.fail(rq, err)
			return
		}
		if ok {
			off, n, ranged = rg.Start, rg.Length, true
		}
	}
	h.objectHeaders(rq.w, info)
	for p, hdr := range overrides {
		if v := q.Get(p); v != "" {
			rq.w.Header().Set(hdr, v)
		}
	}
	if !ranged && strings.EqualFold(rq.Header.Get("X-Amz-Checksum-Mode"), "ENABLED") {
		for alg, v := range info.Checksums {
			rq.w.Header().Set(sigv4.ChecksumHeader(alg), v)
			rq.w.Header().Set("x-amz-checksum-type", "FULL_OBJECT")
		}
	}
	rq.w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
	status := http.StatusOK
	if ranged {
		status = http.StatusPartialContent
		rq.w.Header().Set("Content-Range", httprange.Range{Start: off, Length: n}.ContentRange(info.Size))
	}
	if head {
		rq.w.WriteHeader(status)
		return
	}
	r, err := obj.NewReader(rq.Context(), off, n)
	if err != nil {
		h.fail(rq, err)
		return
	}
	defer r.Close()
	rq.w.WriteHeader(status)
	if _, err := io.Copy(rq.w, r); err != nil {
		// Headers are gone: cut the connection so the client sees a short body.
		h.log.Debug("s3: download aborted", "bucket", rq.bucket, "key", rq.key, "err", err)
		panic(http.ErrAbortHandler)
	}
}

func (h *handler) deleteObject(rq *request) {
	if err := h.store.DeleteObject(rq.Context(), rq.bucket, rq.key, rq.Header.Get("If-Match")); err != nil {
		h.fail(rq, err)
		return
	}
	rq.w.WriteHeader(http.StatusNoContent)
}

// readSmallBody reads an XML request body (at most max bytes), verifying Content-MD5 if
// given.
func (h *handler) readSmallBody(rq *request, max int64, checksums bool) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(rq.auth.Body, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, errMalformedXML
	}
	if v := rq.Header.Get("Content-Md5"); v != "" {
		want, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			return nil, errInvalidDigest
		}
		got := md5.Sum(b)
		if string(want) != string(got[:]) {
			return nil, errBadDigest
		}
	}
	for _, alg := range sigv4.Algorithms {
		if v := rq.Header.Get(sigv4.ChecksumHeader(alg)); v != "" && checksums {
			c := sigv4.NewChecksum(alg)
			c.Write(b)
			if sigv4.EncodeSum(c.Sum(nil)) != v {
				return nil, errChecksum(alg)
			}
		}
	}
	return b, nil
}

func (h *handler) deleteObjects(rq *request) {
	raw, err := h.readSmallBody(rq, 2<<20, true)
	if err != nil {
		h.fail(rq, err)
		return
	}
	req, err := parseDelete(raw)
	if err != nil {
		h.fail(rq, err)
		return
	}
	if _, err := h.store.HeadBucket(rq.Context(), rq.bucket); err != nil {
		h.fail(rq, err)
		return
	}
	type deleted struct {
		Key string `xml:"Key"`
	}
	type delErr struct {
		Key     string `xml:"Key"`
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	type result struct {
		XMLName xml.Name  `xml:"DeleteResult"`
		Xmlns   string    `xml:"xmlns,attr"`
		Deleted []deleted `xml:"Deleted"`
		Errors  []delErr  `xml:"Error"`
	}
	res := result{Xmlns: ns}
	for _, o := range req.Objects {
		var err error
		if o.VersionID != "" && o.VersionID != "null" {
			err = newErr(400, "NoSuchVersion", "The specified version does not exist.")
		} else if kerr := keyError(o.Key); kerr != nil {
			err = kerr
		} else {
			err = h.store.DeleteObject(rq.Context(), rq.bucket, o.Key, "")
		}
		if err != nil {
			e := toS3(err)
			res.Errors = append(res.Errors, delErr{o.Key, e.Code, e.Message})
			continue
		}
		if !req.Quiet {
			res.Deleted = append(res.Deleted, deleted{o.Key})
		}
	}
	h.writeXML(rq, 200, res)
}

// copySource parses x-amz-copy-source.
func copySource(v string) (bucket, key string, err error) {
	src, ver, _ := strings.Cut(v, "?")
	if ver != "" {
		q, _ := url.ParseQuery(ver)
		if id := q.Get("versionId"); id != "" && id != "null" {
			return "", "", newErr(400, "InvalidArgument", "Invalid version id specified")
		}
	}
	s, uerr := url.PathUnescape(src)
	if uerr != nil {
		return "", "", errInvalidArgument("Invalid copy source encoding")
	}
	s = strings.TrimPrefix(s, "/")
	bucket, key, ok := strings.Cut(s, "/")
	if !ok || bucket == "" || key == "" {
		return "", "", errInvalidArgument("Copy Source must mention the source bucket and key: sourcebucket/sourcekey")
	}
	if err := keyError(key); err != nil {
		return "", "", err
	}
	return bucket, key, nil
}

func (h *handler) copyObject(rq *request) {
	sb, sk, err := copySource(rq.Header.Get("X-Amz-Copy-Source"))
	if err != nil {
		h.fail(rq, err)
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(rq.auth.Body, 1<<20))
	put, err := h.putOptions(rq)
	if err != nil {
		h.fail(rq, err)
		return
	}
	directive := rq.Header.Get("X-Amz-Metadata-Directive")
	if directive != "" && directive != "COPY" && directive != "REPLACE" {
		h.fail(rq, errInvalidArgument("Unknown metadata directive."))
		return
	}
	if td := rq.Header.Get("X-Amz-Tagging-Directive"); td == "REPLACE" {
		h.fail(rq, errNotImplemented("object tagging"))
		return
	}
	replace := directive == "REPLACE"
	if sb == rq.bucket && sk == rq.key && !replace {
		h.fail(rq, newErr(400, "InvalidRequest", "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes."))
		return
	}
	opts := blob.CopyOptions{ReplaceMetadata: replace, Put: put,
		Check: func(src *blob.ObjectInfo) error { return conditions(rq.Header, "X-Amz-Copy-Source-", src, false) }}
	opts.Put.IfMatch = rq.Header.Get("If-Match")
	opts.Put.IfNoneMatch = rq.Header.Get("If-None-Match")
	info, err := h.store.CopyObject(rq.Context(), sb, sk, rq.bucket, rq.key, opts)
	if err != nil {
		h.fail(rq, err)
		return
	}
	type result struct {
		XMLName      xml.Name `xml:"CopyObjectResult"`
		Xmlns        string   `xml:"xmlns,attr"`
		LastModified string   `xml:"LastModified"`
		ETag         string   `xml:"ETag"`
	}
	h.writeXML(rq, 200, result{Xmlns: ns, LastModified: isoTime(info.Modified), ETag: `"` + info.ETag + `"`})
}
