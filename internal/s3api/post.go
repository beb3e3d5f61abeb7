package s3api

import (
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/holdfast/holdfast/internal/blob"
	"github.com/holdfast/holdfast/internal/sigv4"
)

func isPostUpload(r *http.Request, key string) bool {
	if r.Method != http.MethodPost || key != "" {
		return false
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return mt == "multipart/form-data"
}

func errPolicy(msg string) *s3Error {
	return newErr(403, "AccessDenied", "Invalid according to Policy: "+msg)
}

// postObject serves a browser-form upload (POST Object with a signed policy document).
func (h *handler) postObject(rq *request) {
	mr, err := rq.MultipartReader()
	if err != nil {
		h.fail(rq, errMalformedPOST)
		return
	}
	fields := map[string]string{}
	var file io.Reader
	var fileName string
	for i := 0; ; i++ {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil || i > 64 {
			h.fail(rq, errMalformedPOST)
			return
		}
		name := strings.ToLower(p.FormName())
		if name == "file" {
			file, fileName = p, p.FileName()
			break
		}
		b, err := io.ReadAll(io.LimitReader(p, 64<<10+1))
		if err != nil || len(b) > 64<<10 {
			h.fail(rq, errMalformedPOST)
			return
		}
		fields[name] = string(b)
	}
	if file == nil {
		h.fail(rq, errMalformedPOST)
		return
	}
	if fields["x-amz-algorithm"] != "AWS4-HMAC-SHA256" || fields["policy"] == "" {
		h.fail(rq, newErr(400, "InvalidRequest", "POST uploads need a policy signed with AWS4-HMAC-SHA256"))
		return
	}
	if _, err := h.v.VerifyPostPolicy(fields["x-amz-credential"], fields["x-amz-date"], fields["policy"], fields["x-amz-signature"]); err != nil {
		h.fail(rq, err)
		return
	}
	key := strings.ReplaceAll(fields["key"], "${filename}", fileName)
	if err := keyError(key); err != nil {
		h.fail(rq, err)
		return
	}
	fields["bucket"] = rq.bucket
	minLen, maxLen, err := checkPolicy(fields["policy"], fields)
	if err != nil {
		h.fail(rq, err)
		return
	}
	// The form's fields play the part of the PUT's headers.
	hd := http.Header{}
	for k, v := range fields {
		switch {
		case strings.HasPrefix(k, "x-amz-meta-"), strings.HasPrefix(k, "x-amz-checksum-"), k == "x-amz-storage-class",
			k == "content-type", k == "cache-control", k == "content-disposition", k == "content-encoding", k == "expires",
			k == "x-amz-acl", k == "x-amz-tagging", k == "x-amz-server-side-encryption":
			hd.Set(k, v)
		}
	}
	sub := &request{Request: rq.Request.Clone(rq.Context()), w: rq.w, id: rq.id, bucket: rq.bucket, key: key}
	sub.Header = hd
	opts, err := h.putOptions(sub)
	if err != nil {
		h.fail(rq, err)
		return
	}
	sub.auth = &sigv4.Result{Trailer: http.Header{}}
	c, err := h.newChecker(sub)
	if err != nil {
		h.fail(rq, err)
		return
	}
	body := io.Reader(&capReader{r: file, left: min(maxLen, h.opts.MaxObjectSize)})
	if c.h != nil {
		body = io.TeeReader(body, c.h)
	}
	opts.BeforeCommit = func(info *blob.ObjectInfo) error {
		if info.Size < minLen {
			return errPolicy("your proposed upload is smaller than the minimum allowed size")
		}
		return c.check(info.ETag, &info.Checksums)
	}
	info, err := h.store.PutObject(rq.Context(), rq.bucket, key, body, -1, opts)
	if errors.Is(err, errTooLarge) {
		err = errPolicy("your proposed upload exceeds the maximum allowed size")
	}
	if err != nil {
		h.fail(rq, err)
		return
	}
	scheme := "http"
	if rq.TLS != nil {
		scheme = "https"
	}
	loc := scheme + "://" + rq.Host + "/" + rq.bucket + "/" + sigv4.EncodePath(key)
	if b, _ := h.route(rq.Request); b != "" && !strings.HasPrefix(strings.TrimPrefix(rq.URL.Path, "/"), b) {
		loc = scheme + "://" + rq.Host + "/" + sigv4.EncodePath(key) // virtual-host style
	}
	w := rq.w
	w.Header().Set("ETag", `"`+info.ETag+`"`)
	w.Header().Set("Location", loc)
	for alg, v := range info.Checksums {
		w.Header().Set(sigv4.ChecksumHeader(alg), v)
	}
	if redir := fields["success_action_redirect"]; redir != "" {
		if u, perr := url.Parse(redir); perr == nil && (u.Scheme == "http" || u.Scheme == "https") {
			q := u.Query()
			q.Set("bucket", rq.bucket)
			q.Set("key", key)
			q.Set("etag", `"`+info.ETag+`"`)
			u.RawQuery = q.Encode()
			http.Redirect(w, rq.Request, u.String(), http.StatusSeeOther)
			return
		}
	}
	switch fields["success_action_status"] {
	case "200":
		w.WriteHeader(200)
	case "201":
		type result struct {
			XMLName  xml.Name `xml:"PostResponse"`
			Location string   `xml:"Location"`
			Bucket   string   `xml:"Bucket"`
			Key      string   `xml:"Key"`
			ETag     string   `xml:"ETag"`
		}
		h.writeXML(rq, 201, result{Location: loc, Bucket: rq.bucket, Key: key, ETag: `"` + info.ETag + `"`})
	default:
		w.WriteHeader(204)
	}
}

var errMalformedPOST = newErr(400, "MalformedPOSTRequest", "The body of your POST request is not well-formed multipart/form-data.")

// checkPolicy checks a POST policy document against the form: expiration, every
// condition, and that every form field is covered by a condition. It returns the
// content-length-range.
func checkPolicy(b64policy string, fields map[string]string) (minLen, maxLen int64, err error) {
	raw, derr := base64.StdEncoding.DecodeString(b64policy)
	if derr != nil {
		return 0, 0, newErr(400, "InvalidPolicyDocument", "Invalid Policy: policy is not base64")
	}
	var doc struct {
		Expiration string            `json:"expiration"`
		Conditions []json.RawMessage `json:"conditions"`
	}
	if json.Unmarshal(raw, &doc) != nil {
		return 0, 0, newErr(400, "InvalidPolicyDocument", "Invalid Policy: policy is not JSON")
	}
	exp, perr := time.Parse(time.RFC3339Nano, doc.Expiration)
	if perr != nil {
		return 0, 0, newErr(400, "InvalidPolicyDocument", "Invalid Policy: bad expiration")
	}
	if time.Now().After(exp) {
		return 0, 0, errPolicy("Policy expired.")
	}
	maxLen = 1<<63 - 1
	covered := map[string]bool{}
	check := func(op, field, value string) error {
		field = strings.ToLower(strings.TrimPrefix(field, "$"))
		covered[field] = true
		got := fields[field]
		switch op {
		case "eq":
			if got != value {
				return errPolicy(fmt.Sprintf("Policy Condition failed: [\"eq\", \"$%s\", %q]", field, value))
			}
		case "starts-with":
			if field == "content-type" && value != "" {
				// Content-Type may list several types, each must match.
				for _, t := range strings.Split(got, ",") {
					if !strings.HasPrefix(strings.TrimSpace(t), value) {
						return errPolicy("Policy Condition failed: starts-with $content-type")
					}
				}
				return nil
			}
			if !strings.HasPrefix(got, value) {
				return errPolicy(fmt.Sprintf("Policy Condition failed: [\"starts-with\", \"$%s\", %q]", field, value))
			}
		default:
			return newErr(400, "InvalidPolicyDocument", "Invalid Policy: unknown condition "+op)
		}
		return nil
	}
	for _, c := range doc.Conditions {
		var m map[string]string
		if json.Unmarshal(c, &m) == nil {
			for k, v := range m {
				if err := check("eq", k, v); err != nil {
					return 0, 0, err
				}
			}
			continue
		}
		var arr []any
		if json.Unmarshal(c, &arr) != nil || len(arr) != 3 {
			return 0, 0, newErr(400, "InvalidPolicyDocument", "Invalid Policy: bad condition")
		}
		op, _ := arr[0].(string)
		if strings.EqualFold(op, "content-length-range") {
			lo, ok1 := toInt(arr[1])
			hi, ok2 := toInt(arr[2])
			if !ok1 || !ok2 {
				return 0, 0, newErr(400, "InvalidPolicyDocument", "Invalid Policy: bad content-length-range")
			}
			minLen, maxLen = lo, hi
			continue
		}
		field, _ := arr[1].(string)
		value, _ := arr[2].(string)
		if err := check(strings.ToLower(op), field, value); err != nil {
			return 0, 0, err
		}
	}
	for k := range fields {
		switch {
		case covered[k], k == "policy", k == "x-amz-signature", k == "file", k == "bucket",
			k == "x-amz-algorithm", k == "x-amz-credential", k == "x-amz-date",
			strings.HasPrefix(k, "x-ignore-"):
		default:
			return 0, 0, errPolicy("Extra input fields: " + k)
		}
	}
	return minLen, maxLen, nil
}

func toInt(v any) (int64, bool) {
	switch x := v.(type) {
	case float64:
		return int64(x), true
	case string:
		n, err := strconv.ParseInt(x, 10, 64)
		return n, err == nil
	}
	return 0, false
}
