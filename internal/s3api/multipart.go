package s3api

import (
	"encoding/base64"
	"encoding/xml"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/holdfast/holdfast/internal/blob"
	"github.com/holdfast/holdfast/internal/httprange"
	"github.com/holdfast/holdfast/internal/sigv4"
)

func (h *handler) createUpload(rq *request) {
	opts, err := h.putOptions(rq)
	if err != nil {
		h.fail(rq, err)
		return
	}
	if a := rq.Header.Get("X-Amz-Checksum-Algorithm"); a != "" && sigv4.NewChecksum(a) == nil {
		h.fail(rq, errNotImplemented("checksum algorithm "+a))
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(rq.auth.Body, 1<<20))
	id, err := h.store.CreateMultipart(rq.Context(), rq.bucket, rq.key, opts)
	if err != nil {
		h.fail(rq, err)
		return
	}
	if a := rq.Header.Get("X-Amz-Checksum-Algorithm"); a != "" {
		rq.w.Header().Set("x-amz-checksum-algorithm", strings.ToUpper(a))
	}
	type result struct {
		XMLName  xml.Name `xml:"InitiateMultipartUploadResult"`
		Xmlns    string   `xml:"xmlns,attr"`
		Bucket   string   `xml:"Bucket"`
		Key      string   `xml:"Key"`
		UploadID string   `xml:"UploadId"`
	}
	h.writeXML(rq, 200, result{Xmlns: ns, Bucket: rq.bucket, Key: rq.key, UploadID: id})
}

func partNumber(rq *request) (int, error) {
	n, err := strconv.Atoi(rq.URL.Query().Get("partNumber"))
	if err != nil || n < 1 || n > blob.MaxParts {
		return 0, errInvalidArgument("Part number must be an integer between 1 and 10000, inclusive")
	}
	return n, nil
}

func (h *handler) uploadPart(rq *request, id string) {
	n, err := partNumber(rq)
	if err != nil {
		h.fail(rq, err)
		return
	}
	if rq.Header.Get("X-Amz-Copy-Source") != "" {
		h.uploadPartCopy(rq, id, n)
		return
	}
	c, body, size, err := h.checkedBody(rq)
	if err != nil {
		h.fail(rq, err)
		return
	}
	pi, err := h.store.UploadPart(rq.Context(), rq.bucket, rq.key, id, n, body, size, func(p *blob.PartInfo) error {
		return c.check(p.ETag, &p.Checksums)
	})
	if err != nil {
		h.fail(rq, err)
		return
	}
	rq.w.Header().Set("ETag", `"`+pi.ETag+`"`)
	for alg, v := range pi.Checksums {
		rq.w.Header().Set(sigv4.ChecksumHeader(alg), v)
	}
	rq.w.WriteHeader(200)
}

func (h *handler) uploadPartCopy(rq *request, id string, n int) {
	sb, sk, err := copySource(rq.Header.Get("X-Amz-Copy-Source"))
	if err != nil {
		h.fail(rq, err)
		return
	}
	obj, err := h.store.OpenObject(rq.Context(), sb, sk)
	if err != nil {
		h.fail(rq, err)
		return
	}
	if err := conditions(rq.Header, "X-Amz-Copy-Source-", &obj.Info, false); err != nil {
		h.fail(rq, err)
		return
	}
	off, length := int64(0), obj.Info.Size
	if v := rq.Header.Get("X-Amz-Copy-Source-Range"); v != "" {
		rg, err := copySourceRange(v, obj.Info.Size)
		if err != nil {
			h.fail(rq, err)
			return
		}
		off, length = rg.Start, rg.Length
	}
	r, err := obj.NewReader(rq.Context(), off, length)
	if err != nil {
		h.fail(rq, err)
		return
	}
	defer r.Close()
	pi, err := h.store.UploadPart(rq.Context(), rq.bucket, rq.key, id, n, r, length, nil)
	if err != nil {
		h.fail(rq, err)
		return
	}
	type result struct {
		XMLName      xml.Name `xml:"CopyPartResult"`
		Xmlns        string   `xml:"xmlns,attr"`
		LastModified string   `xml:"LastModified"`
		ETag         string   `xml:"ETag"`
	}
	h.writeXML(rq, 200, result{Xmlns: ns, LastModified: isoTime(pi.Modified), ETag: `"` + pi.ETag + `"`})
}

func (h *handler) completeUpload(rq *request, id string) {
	raw, err := h.readSmallBody(rq, 4<<20, false)
	if err != nil {
		h.fail(rq, err)
		return
	}
	parts, err := parseComplete(raw)
	if err != nil {
		h.fail(rq, err)
		return
	}
	cond := blob.PutOptions{IfMatch: rq.Header.Get("If-Match"), IfNoneMatch: rq.Header.Get("If-None-Match")}
	sums, err := h.fullObjectChecksums(rq, id, parts)
	if err != nil {
		h.fail(rq, err)
		return
	}
	cond.Checksums = sums
	info, err := h.store.CompleteMultipart(rq.Context(), rq.bucket, rq.key, id, parts, cond)
	if err != nil {
		h.fail(rq, err)
		return
	}
	for alg, v := range info.Checksums {
		rq.w.Header().Set(sigv4.ChecksumHeader(alg), v)
		rq.w.Header().Set("x-amz-checksum-type", "FULL_OBJECT")
	}
	type result struct {
		XMLName  xml.Name `xml:"CompleteMultipartUploadResult"`
		Xmlns    string   `xml:"xmlns,attr"`
		Location string   `xml:"Location"`
		Bucket   string   `xml:"Bucket"`
		Key      string   `xml:"Key"`
		ETag     string   `xml:"ETag"`
		CRC32    string   `xml:"ChecksumCRC32,omitempty"`
		CRC32C   string   `xml:"ChecksumCRC32C,omitempty"`
		CRC64    string   `xml:"ChecksumCRC64NVME,omitempty"`
		Type     string   `xml:"ChecksumType,omitempty"`
	}
	scheme := "http"
	if rq.TLS != nil {
		scheme = "https"
	}
	h.writeXML(rq, 200, result{Xmlns: ns, Location: scheme + "://" + rq.Host + "/" + rq.bucket + "/" + sigv4.EncodePath(rq.key), Bucket: rq.bucket, Key: rq.key, ETag: `"` + info.ETag + `"`,
		CRC32: info.Checksums[sigv4.CRC32], CRC32C: info.Checksums[sigv4.CRC32C], CRC64: info.Checksums[sigv4.CRC64NVME], Type: checksumType(info.Checksums)})
}

func checksumType(m map[string]string) string {
	if len(m) > 0 {
		return "FULL_OBJECT"
	}
	return ""
}

// fullObjectChecksums derives the whole object's CRC from the parts' CRCs (when every
// listed part has one) and checks it against a checksum header of the completion request.
func (h *handler) fullObjectChecksums(rq *request, id string, parts []blob.CompletePart) (map[string]string, error) {
	_, stored, err := h.store.ListParts(rq.Context(), rq.bucket, rq.key, id)
	if err != nil {
		return nil, err
	}
	byNum := make(map[int]blob.PartInfo, len(stored))
	for _, p := range stored {
		byNum[p.Number] = p
	}
	composite := strings.EqualFold(rq.Header.Get("X-Amz-Checksum-Type"), "COMPOSITE")
	out := map[string]string{}
	for _, alg := range sigv4.Algorithms {
		want := rq.Header.Get(sigv4.ChecksumHeader(alg))
		var raws [][]byte
		for _, cp := range parts {
			p, ok := byNum[cp.Number]
			b, err := base64.StdEncoding.DecodeString(p.Checksums[alg])
			if !ok || err != nil || len(b) == 0 {
				raws = nil
				break
			}
			raws = append(raws, b)
		}
		if raws == nil {
			continue
		}
		if want != "" && (composite || alg == sigv4.SHA1 || alg == sigv4.SHA256) {
			// Checksum of the parts' checksums, shown as "<base64>-<parts>".
			h := sigv4.NewChecksum(alg)
			for _, b := range raws {
				h.Write(b)
			}
			if w, _, _ := strings.Cut(want, "-"); w != sigv4.EncodeSum(h.Sum(nil)) {
				return nil, errChecksum(alg)
			}
			want = ""
		}
		acc := raws[0]
		ok := true
		for i := 1; i < len(raws) && ok; i++ {
			acc, ok = sigv4.CombineCRC(alg, acc, raws[i], byNum[parts[i].Number].Size)
		}
		if !ok {
			continue
		}
		got := sigv4.EncodeSum(acc)
		if want != "" && want != got {
			return nil, errChecksum(alg)
		}
		out[alg] = got
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

func (h *handler) abortUpload(rq *request, id string) {
	if err := h.store.AbortMultipart(rq.Context(), rq.bucket, rq.key, id); err != nil {
		h.fail(rq, err)
		return
	}
	rq.w.WriteHeader(http.StatusNoContent)
}

func (h *handler) listParts(rq *request, id string) {
	maxParts, err := maxParam(rq, "max-parts", 1000)
	if err != nil {
		h.fail(rq, err)
		return
	}
	marker := 0
	if m := rq.URL.Query().Get("part-number-marker"); m != "" {
		if marker, err = strconv.Atoi(m); err != nil {
			h.fail(rq, errInvalidArgument("part-number-marker must be an integer"))
			return
		}
	}
	_, parts, err := h.store.ListParts(rq.Context(), rq.bucket, rq.key, id)
	if err != nil {
		h.fail(rq, err)
		return
	}
	type part struct {
		PartNumber   int    `xml:"PartNumber"`
		LastModified string `xml:"LastModified"`
		ETag         string `xml:"ETag"`
		Size         int64  `xml:"Size"`
	}
	type result struct {
		XMLName              xml.Name `xml:"ListPartsResult"`
		Xmlns                string   `xml:"xmlns,attr"`
		Bucket               string   `xml:"Bucket"`
		Key                  string   `xml:"Key"`
		UploadID             string   `xml:"UploadId"`
		Initiator            owner    `xml:"Initiator"`
		Owner                owner    `xml:"Owner"`
		StorageClass         string   `xml:"StorageClass"`
		PartNumberMarker     int      `xml:"PartNumberMarker"`
		NextPartNumberMarker int      `xml:"NextPartNumberMarker"`
		MaxParts             int      `xml:"MaxParts"`
		IsTruncated          bool     `xml:"IsTruncated"`
		Parts                []part   `xml:"Part"`
	}
	res := result{Xmlns: ns, Bucket: rq.bucket, Key: rq.key, UploadID: id, Initiator: theOwner, Owner: theOwner,
		StorageClass: "STANDARD", PartNumberMarker: marker, MaxParts: maxParts}
	for _, p := range parts {
		if p.Number <= marker {
			continue
		}
		if len(res.Parts) >= maxParts {
			res.IsTruncated = true
			break
		}
		res.Parts = append(res.Parts, part{p.Number, isoTime(p.Modified), `"` + p.ETag + `"`, p.Size})
		res.NextPartNumberMarker = p.Number
	}
	h.writeXML(rq, 200, res)
}

// copySourceRange reads x-amz-copy-source-range, which S3 wants as exactly
// bytes=first-last inside the source (no suffix, no open end, one range).
func copySourceRange(v string, size int64) (httprange.Range, error) {
	spec, ok := strings.CutPrefix(v, "bytes=")
	first, last, _ := strings.Cut(spec, "-")
	rs, err := httprange.Parse(v, size)
	if !ok || first == "" || err != nil || len(rs) != 1 || strconv.FormatInt(rs[0].End(), 10) != last {
		return httprange.Range{}, newErr(400, "InvalidArgument", "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy, inside the source object of "+strconv.FormatInt(size, 10)+" bytes")
	}
	return rs[0], nil
}
