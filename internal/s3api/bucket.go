package s3api

import (
	"encoding/base64"
	"encoding/xml"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/holdfast/holdfast/internal/blob"
	"github.com/holdfast/holdfast/internal/sigv4"
)

const ns = "http://s3.amazonaws.com/doc/2006-03-01/"

type owner struct {
	ID          string `xml:"ID"`
	DisplayName string `xml:"DisplayName"`
}

var theOwner = owner{ID: "holdfast", DisplayName: "holdfast"}

func isoTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func (h *handler) listBuckets(rq *request) {
	type bucket struct {
		Name         string `xml:"Name"`
		CreationDate string `xml:"CreationDate"`
	}
	type result struct {
		XMLName xml.Name `xml:"ListAllMyBucketsResult"`
		Xmlns   string   `xml:"xmlns,attr"`
		Owner   owner    `xml:"Owner"`
		Buckets []bucket `xml:"Buckets>Bucket"`
	}
	res := result{Xmlns: ns, Owner: theOwner, Buckets: []bucket{}}
	for _, b := range h.store.ListBuckets(rq.Context()) {
		res.Buckets = append(res.Buckets, bucket{b.Name, isoTime(b.Created)})
	}
	h.writeXML(rq, 200, res)
}

func (h *handler) createBucket(rq *request) {
	if acl := rq.Header.Get("X-Amz-Acl"); acl != "" && acl != "private" {
		h.fail(rq, errNotImplemented("canned ACL "+acl))
		return
	}
	if rq.Header.Get("X-Amz-Bucket-Object-Lock-Enabled") == "true" {
		h.fail(rq, errNotImplemented("object lock"))
		return
	}
	// The body may hold a CreateBucketConfiguration (location): read and ignore it.
	_, _ = io.Copy(io.Discard, io.LimitReader(rq.auth.Body, 1<<20))
	if err := h.store.CreateBucket(rq.Context(), rq.bucket); err != nil {
		h.fail(rq, err)
		return
	}
	rq.w.Header().Set("Location", "/"+rq.bucket)
	rq.w.WriteHeader(200)
}

func (h *handler) headBucket(rq *request) {
	if _, err := h.store.HeadBucket(rq.Context(), rq.bucket); err != nil {
		h.fail(rq, err)
		return
	}
	rq.w.Header().Set("x-amz-bucket-region", h.opts.Region)
	rq.w.WriteHeader(200)
}

func (h *handler) deleteBucket(rq *request) {
	if err := h.store.DeleteBucket(rq.Context(), rq.bucket); err != nil {
		h.fail(rq, err)
		return
	}
	rq.w.WriteHeader(204)
}

func (h *handler) getLocation(rq *request) {
	if _, err := h.store.HeadBucket(rq.Context(), rq.bucket); err != nil {
		h.fail(rq, err)
		return
	}
	type result struct {
		XMLName xml.Name `xml:"LocationConstraint"`
		Xmlns   string   `xml:"xmlns,attr"`
		Region  string   `xml:",chardata"`
	}
	reg := h.opts.Region
	if reg == "us-east-1" {
		reg = ""
	}
	h.writeXML(rq, 200, result{Xmlns: ns, Region: reg})
}

func (h *handler) getVersioning(rq *request) {
	if _, err := h.store.HeadBucket(rq.Context(), rq.bucket); err != nil {
		h.fail(rq, err)
		return
	}
	// Versioning was never enabled: the empty configuration is the true answer.
	type result struct {
		XMLName xml.Name `xml:"VersioningConfiguration"`
		Xmlns   string   `xml:"xmlns,attr"`
	}
	h.writeXML(rq, 200, result{Xmlns: ns})
}

type content struct {
	Key          string `xml:"Key"`
	LastModified string `xml:"LastModified"`
	ETag         string `xml:"ETag"`
	Size         int64  `xml:"Size"`
	StorageClass string `xml:"StorageClass"`
	Owner        *owner `xml:"Owner,omitempty"`
	// UserMetadata is minio's listing extension (metadata=true).
	UserMetadata userMeta `xml:"UserMetadata,omitempty"`
}

// userMeta marshals as <UserMetadata><X-Amz-Meta-Name>value</X-Amz-Meta-Name>...</UserMetadata>.
type userMeta map[string]string

func (m userMeta) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	if len(m) == 0 {
		return nil
	}
	if err := e.EncodeToken(start); err != nil {
		return err
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !xmlName(k) {
			continue
		}
		if err := e.EncodeElement(m[k], xml.StartElement{Name: xml.Name{Local: k}}); err != nil {
			return err
		}
	}
	return e.EncodeToken(start.End())
}

func xmlName(s string) bool {
	for i, c := range s {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || i > 0 && (c >= '0' && c <= '9' || c == '-' || c == '.')
		if !ok {
			return false
		}
	}
	return s != ""
}

func listMeta(o *blob.ObjectInfo) userMeta {
	m := userMeta{}
	for k, v := range o.Meta {
		m[http.CanonicalHeaderKey("X-Amz-Meta-"+k)] = v
	}
	if o.ContentType != "" {
		m["content-type"] = o.ContentType
	}
	return m
}

type commonPrefix struct {
	Prefix string `xml:"Prefix"`
}

type listResult struct {
	XMLName               xml.Name       `xml:"ListBucketResult"`
	Xmlns                 string         `xml:"xmlns,attr"`
	Name                  string         `xml:"Name"`
	Prefix                string         `xml:"Prefix"`
	Marker                *string        `xml:"Marker,omitempty"`
	NextMarker            string         `xml:"NextMarker,omitempty"`
	ContinuationToken     string         `xml:"ContinuationToken,omitempty"`
	NextContinuationToken string         `xml:"NextContinuationToken,omitempty"`
	StartAfter            string         `xml:"StartAfter,omitempty"`
	KeyCount              *int           `xml:"KeyCount,omitempty"`
	MaxKeys               int            `xml:"MaxKeys"`
	Delimiter             string         `xml:"Delimiter,omitempty"`
	EncodingType          string         `xml:"EncodingType,omitempty"`
	IsTruncated           bool           `xml:"IsTruncated"`
	Contents              []content      `xml:"Contents"`
	CommonPrefixes        []commonPrefix `xml:"CommonPrefixes"`
}

func maxParam(rq *request, name string, def int) (int, error) {
	s := rq.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, errInvalidArgument(name + " must be a non-negative integer")
	}
	if n > def {
		n = def
	}
	return n, nil
}

func (h *handler) listObjects(rq *request, version int) {
	q := rq.URL.Query()
	enc := q.Get("encoding-type")
	if enc != "" && enc != "url" {
		h.fail(rq, errInvalidArgument("Invalid Encoding Method specified in Request"))
		return
	}
	maxKeys, err := maxParam(rq, "max-keys", 1000)
	if err != nil {
		h.fail(rq, err)
		return
	}
	e := func(s string) string {
		if enc == "url" {
			return sigv4.EncodePath(s)
		}
		return s
	}
	prefix, delim := q.Get("prefix"), q.Get("delimiter")
	withMeta := version == 2 && q.Get("metadata") == "true"
	opts := blob.ListOptions{Prefix: prefix, Delimiter: delim, Limit: maxKeys, WithMetadata: withMeta}
	res := listResult{Xmlns: ns, Name: rq.bucket, Prefix: e(prefix), Delimiter: e(delim), MaxKeys: maxKeys, EncodingType: enc}
	if version == 2 {
		if tok := q.Get("continuation-token"); tok != "" {
			b, err := base64.RawURLEncoding.DecodeString(tok)
			if err != nil {
				h.fail(rq, errInvalidArgument("The continuation token provided is incorrect"))
				return
			}
			opts.Continue = string(b)
			res.ContinuationToken = tok
		} else if sa := q.Get("start-after"); sa != "" {
			opts.StartAfter = sa
		}
		res.StartAfter = e(q.Get("start-after"))
	} else {
		m := q.Get("marker")
		res.Marker = new(string)
		*res.Marker = e(m)
		if delim != "" && strings.HasSuffix(m, delim) && strings.HasPrefix(m, prefix) && len(m) > len(prefix) {
			opts.Continue = "\x00" + m
		} else {
			opts.StartAfter = m
		}
	}
	var page *blob.ListResult
	if maxKeys == 0 {
		if _, err := h.store.HeadBucket(rq.Context(), rq.bucket); err != nil {
			h.fail(rq, err)
			return
		}
		page = &blob.ListResult{}
	} else if page, err = h.store.List(rq.Context(), rq.bucket, opts); err != nil {
		h.fail(rq, err)
		return
	}
	for _, o := range page.Objects {
		c := content{Key: e(o.Key), LastModified: isoTime(o.Modified), ETag: `"` + o.ETag + `"`, Size: o.Size, StorageClass: "STANDARD"}
		if withMeta {
			c.UserMetadata = listMeta(&o)
		}
		if version == 1 || q.Get("fetch-owner") == "true" {
			c.Owner = &theOwner
		}
		res.Contents = append(res.Contents, c)
	}
	for _, p := range page.CommonPrefixes {
		res.CommonPrefixes = append(res.CommonPrefixes, commonPrefix{e(p)})
	}
	res.IsTruncated = page.Truncated
	if version == 2 {
		n := len(page.Objects) + len(page.CommonPrefixes)
		res.KeyCount = &n
		if page.Truncated {
			res.NextContinuationToken = base64.RawURLEncoding.EncodeToString([]byte(page.Next))
		}
	} else if page.Truncated {
		res.NextMarker = e(page.LastKey)
	}
	h.writeXML(rq, 200, res)
}

// listVersions answers ListObjectVersions for buckets that were never versioned: every
// object is its only version, "null".
func (h *handler) listVersions(rq *request) {
	q := rq.URL.Query()
	maxKeys, err := maxParam(rq, "max-keys", 1000)
	if err != nil {
		h.fail(rq, err)
		return
	}
	if maxKeys == 0 {
		maxKeys = 1000
	}
	opts := blob.ListOptions{Prefix: q.Get("prefix"), Delimiter: q.Get("delimiter"), StartAfter: q.Get("key-marker"), Limit: maxKeys}
	page, err := h.store.List(rq.Context(), rq.bucket, opts)
	if err != nil {
		h.fail(rq, err)
		return
	}
	type version struct {
		Key          string `xml:"Key"`
		VersionID    string `xml:"VersionId"`
		IsLatest     bool   `xml:"IsLatest"`
		LastModified string `xml:"LastModified"`
		ETag         string `xml:"ETag"`
		Size         int64  `xml:"Size"`
		StorageClass string `xml:"StorageClass"`
		Owner        owner  `xml:"Owner"`
	}
	type result struct {
		XMLName             xml.Name       `xml:"ListVersionsResult"`
		Xmlns               string         `xml:"xmlns,attr"`
		Name                string         `xml:"Name"`
		Prefix              string         `xml:"Prefix"`
		KeyMarker           string         `xml:"KeyMarker"`
		VersionIDMarker     string         `xml:"VersionIdMarker"`
		NextKeyMarker       string         `xml:"NextKeyMarker,omitempty"`
		NextVersionIDMarker string         `xml:"NextVersionIdMarker,omitempty"`
		MaxKeys             int            `xml:"MaxKeys"`
		Delimiter           string         `xml:"Delimiter,omitempty"`
		IsTruncated         bool           `xml:"IsTruncated"`
		Versions            []version      `xml:"Version"`
		CommonPrefixes      []commonPrefix `xml:"CommonPrefixes"`
	}
	res := result{Xmlns: ns, Name: rq.bucket, Prefix: opts.Prefix, KeyMarker: opts.StartAfter, MaxKeys: maxKeys, Delimiter: opts.Delimiter, IsTruncated: page.Truncated}
	for _, o := range page.Objects {
		res.Versions = append(res.Versions, version{o.Key, "null", true, isoTime(o.Modified), `"` + o.ETag + `"`, o.Size, "STANDARD", theOwner})
	}
	for _, p := range page.CommonPrefixes {
		res.CommonPrefixes = append(res.CommonPrefixes, commonPrefix{p})
	}
	if page.Truncated {
		res.NextKeyMarker, res.NextVersionIDMarker = page.LastKey, "null"
	}
	h.writeXML(rq, 200, res)
}

func (h *handler) listUploads(rq *request) {
	q := rq.URL.Query()
	maxUploads, err := maxParam(rq, "max-uploads", 1000)
	if err != nil {
		h.fail(rq, err)
		return
	}
	prefix, delim, keyMarker, idMarker := q.Get("prefix"), q.Get("delimiter"), q.Get("key-marker"), q.Get("upload-id-marker")
	ups, err := h.store.ListUploads(rq.Context(), rq.bucket, prefix)
	if err != nil {
		h.fail(rq, err)
		return
	}
	type upload struct {
		Key          string `xml:"Key"`
		UploadID     string `xml:"UploadId"`
		Initiator    owner  `xml:"Initiator"`
		Owner        owner  `xml:"Owner"`
		StorageClass string `xml:"StorageClass"`
		Initiated    string `xml:"Initiated"`
	}
	type result struct {
		XMLName            xml.Name       `xml:"ListMultipartUploadsResult"`
		Xmlns              string         `xml:"xmlns,attr"`
		Bucket             string         `xml:"Bucket"`
		KeyMarker          string         `xml:"KeyMarker"`
		UploadIDMarker     string         `xml:"UploadIdMarker"`
		NextKeyMarker      string         `xml:"NextKeyMarker"`
		NextUploadIDMarker string         `xml:"NextUploadIdMarker"`
		Prefix             string         `xml:"Prefix"`
		Delimiter          string         `xml:"Delimiter,omitempty"`
		MaxUploads         int            `xml:"MaxUploads"`
		IsTruncated        bool           `xml:"IsTruncated"`
		Uploads            []upload       `xml:"Upload"`
		CommonPrefixes     []commonPrefix `xml:"CommonPrefixes"`
	}
	res := result{Xmlns: ns, Bucket: rq.bucket, KeyMarker: keyMarker, UploadIDMarker: idMarker, Prefix: prefix, Delimiter: delim, MaxUploads: maxUploads}
	seen := map[string]bool{}
	n := 0
	for _, u := range ups {
		if keyMarker != "" && (u.Key < keyMarker || (u.Key == keyMarker && (idMarker == "" || u.ID <= idMarker))) {
			continue
		}
		if n >= maxUploads {
			res.IsTruncated = true
			break
		}
		if delim != "" {
			if i := strings.Index(u.Key[len(prefix):], delim); i >= 0 {
				cp := u.Key[:len(prefix)+i+len(delim)]
				if !seen[cp] {
					seen[cp] = true
					res.CommonPrefixes = append(res.CommonPrefixes, commonPrefix{cp})
					n++
				}
				continue
			}
		}
		res.Uploads = append(res.Uploads, upload{u.Key, u.ID, theOwner, theOwner, "STANDARD", isoTime(u.Initiated)})
		res.NextKeyMarker, res.NextUploadIDMarker = u.Key, u.ID
		n++
	}
	h.writeXML(rq, http.StatusOK, res)
}
