package s3api

import (
	"encoding/xml"
	"net/http"
	"strconv"
	"strings"

	"github.com/holdfast/holdfast/internal/sigv4"
)

type checksumXML struct {
	CRC32  string `xml:"ChecksumCRC32,omitempty"`
	CRC32C string `xml:"ChecksumCRC32C,omitempty"`
	CRC64  string `xml:"ChecksumCRC64NVME,omitempty"`
	SHA1   string `xml:"ChecksumSHA1,omitempty"`
	SHA256 string `xml:"ChecksumSHA256,omitempty"`
	Type   string `xml:"ChecksumType,omitempty"`
}

func checksumsXML(m map[string]string, typ string) *checksumXML {
	if len(m) == 0 {
		return nil
	}
	c := &checksumXML{CRC32: m[sigv4.CRC32], CRC32C: m[sigv4.CRC32C], CRC64: m[sigv4.CRC64NVME], SHA1: m[sigv4.SHA1], SHA256: m[sigv4.SHA256], Type: typ}
	return c
}

// getAttributes answers GetObjectAttributes (GET ?attributes).
func (h *handler) getAttributes(rq *request) {
	if v := rq.URL.Query().Get("versionId"); v != "" && v != "null" {
		h.fail(rq, newErr(404, "NoSuchVersion", "The specified version does not exist."))
		return
	}
	want := map[string]bool{}
	for _, v := range rq.Header.Values("X-Amz-Object-Attributes") {
		for _, a := range strings.Split(v, ",") {
			if a = strings.TrimSpace(a); a != "" {
				want[a] = true
			}
		}
	}
	if len(want) == 0 {
		h.fail(rq, errInvalidArgument("x-amz-object-attributes header must name at least one attribute"))
		return
	}
	obj, err := h.store.OpenObject(rq.Context(), rq.bucket, rq.key)
	if err != nil {
		h.fail(rq, err)
		return
	}
	info := &obj.Info
	maxParts, marker := 1000, 0
	if v := rq.Header.Get("X-Amz-Max-Parts"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 && n < 1000 {
			maxParts = n
		}
	}
	if v := rq.Header.Get("X-Amz-Part-Number-Marker"); v != "" {
		marker, _ = strconv.Atoi(v)
	}
	type part struct {
		checksumXML
		PartNumber int   `xml:"PartNumber"`
		Size       int64 `xml:"Size"`
	}
	type parts struct {
		TotalPartsCount      int    `xml:"TotalPartsCount"`
		PartsCount           int    `xml:"PartsCount"` // minio-go reads this name
		PartNumberMarker     int    `xml:"PartNumberMarker"`
		NextPartNumberMarker int    `xml:"NextPartNumberMarker"`
		MaxParts             int    `xml:"MaxParts"`
		IsTruncated          bool   `xml:"IsTruncated"`
		Parts                []part `xml:"Part"`
	}
	type result struct {
		XMLName      xml.Name     `xml:"GetObjectAttributesOutput"`
		Xmlns        string       `xml:"xmlns,attr"`
		ETag         string       `xml:"ETag,omitempty"`
		Checksum     *checksumXML `xml:"Checksum,omitempty"`
		ObjectParts  *parts       `xml:"ObjectParts,omitempty"`
		StorageClass string       `xml:"StorageClass,omitempty"`
		ObjectSize   *int64       `xml:"ObjectSize,omitempty"`
	}
	res := result{Xmlns: ns}
	if want["ETag"] {
		res.ETag = info.ETag
	}
	if want["Checksum"] {
		res.Checksum = checksumsXML(info.Checksums, "FULL_OBJECT")
	}
	if want["StorageClass"] {
		res.StorageClass = "STANDARD"
	}
	if want["ObjectSize"] {
		res.ObjectSize = &info.Size
	}
	if want["ObjectParts"] && info.Parts > 0 {
		p := &parts{TotalPartsCount: info.Parts, PartsCount: info.Parts, PartNumberMarker: marker, MaxParts: maxParts}
		for n := marker + 1; n <= info.Parts; n++ {
			if len(p.Parts) >= maxParts {
				p.IsTruncated = true
				break
			}
			_, size, _ := obj.PartRange(n)
			pt := part{PartNumber: n, Size: size}
			if c := checksumsXML(obj.PartChecksums(n), ""); c != nil {
				pt.checksumXML = *c
			}
			p.Parts = append(p.Parts, pt)
			p.NextPartNumberMarker = n
		}
		res.ObjectParts = p
	}
	rq.w.Header().Set("Last-Modified", info.Modified.UTC().Format(http.TimeFormat))
	h.writeXML(rq, 200, res)
}
