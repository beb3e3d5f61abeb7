package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Payload hash values of x-amz-content-sha256.
const (
	UnsignedPayload       = "UNSIGNED-PAYLOAD"
	StreamingSigned       = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	StreamingSignedTrail  = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
	StreamingUnsignedTrl  = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
	algorithm             = "AWS4-HMAC-SHA256"
	timeFormat            = "20060102T150405Z"
	dateFormat            = "20060102"
	maxPresignExpiry      = 7 * 24 * time.Hour
	emptySHA256           = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	defaultMaxSkew        = 15 * time.Minute
	maxAuthorizationBytes = 16 << 10
)

// Verifier checks requests signed with SigV4 for service "s3".
type Verifier struct {
	// Secret returns the secret key of an access key.
	Secret func(accessKey string) (secret string, ok bool)
	// Now is the clock (time.Now if nil).
	Now func() time.Time
	// MaxSkew between the request's date and Now (15 min if zero).
	MaxSkew time.Duration

	mu   sync.Mutex
	keys map[string][]byte // secret|date|region → signing key
}

// Result is a verified request.
type Result struct {
	AccessKey string
	// Presigned is true for query-string authentication.
	Presigned bool
	// ContentSHA256 is the x-amz-content-sha256 mode or digest.
	ContentSHA256 string
	// Body yields the decoded payload and fails (with *Error) if a signature, the
	// payload digest or the framing is wrong. Read it to EOF before trusting it.
	Body io.Reader
	// DecodedLength is the payload size, -1 if unknown.
	DecodedLength int64
	// Trailer holds trailing headers (x-amz-checksum-*) once Body reached EOF.
	Trailer http.Header
	// Chunked is true for aws-chunked bodies.
	Chunked bool
}

type authParams struct {
	accessKey, date, region, service string
	signedHeaders                    []string
	signature                        string
	amzDate                          time.Time
	presigned                        bool
	expires                          time.Duration
}

// Verify authenticates r and returns the wrapped body. It never reads the body itself.
func (v *Verifier) Verify(r *http.Request) (*Result, error) {
	var (
		p   *authParams
		err error
	)
	q := r.URL.Query()
	auth := r.Header.Get("Authorization")
	switch {
	case auth != "":
		p, err = parseAuthorization(auth)
	case q.Get("X-Amz-Algorithm") != "" || q.Get("X-Amz-Signature") != "" || q.Get("X-Amz-Credential") != "":
		p, err = parsePresigned(q)
	case q.Get("Signature") != "" || q.Get("AWSAccessKeyId") != "":
		return nil, errf(501, "NotImplemented", "Signature Version 2 is not implemented; use AWS4-HMAC-SHA256")
	default:
		return nil, ErrMissingAuth
	}
	if err != nil {
		return nil, err
	}
	if !p.presigned {
		ds := r.Header.Get("X-Amz-Date")
		if ds == "" {
			if d := r.Header.Get("Date"); d != "" {
				t, perr := http.ParseTime(d)
				if perr != nil {
					return nil, errf(403, "AccessDenied", "AWS authentication requires a valid Date or x-amz-date header")
				}
				p.amzDate = t.UTC()
				ds = t.UTC().Format(timeFormat)
			}
		} else {
			t, perr := time.Parse(timeFormat, ds)
			if perr != nil {
				return nil, errf(403, "AccessDenied", "AWS authentication requires a valid Date or x-amz-date header")
			}
			p.amzDate = t
		}
		if p.amzDate.IsZero() {
			return nil, errf(403, "AccessDenied", "AWS authentication requires a valid Date or x-amz-date header")
		}
	}
	if p.amzDate.UTC().Format(dateFormat) != p.date {
		return nil, errf(400, "AuthorizationHeaderMalformed", "the credential date %s does not match the request date", p.date)
	}
	if p.service != "s3" {
		return nil, errf(400, "AuthorizationHeaderMalformed", "the credential's service must be 's3', not %q", p.service)
	}
	secret, ok := v.Secret(p.accessKey)
	if !ok {
		return nil, ErrAccessKey
	}
	now := time.Now()
	if v.Now != nil {
		now = v.Now()
	}
	skew := v.MaxSkew
	if skew == 0 {
		skew = defaultMaxSkew
	}
	if p.presigned {
		if now.Before(p.amzDate.Add(-skew)) {
			return nil, errf(403, "AccessDenied", "Request is not valid yet")
		}
		if now.After(p.amzDate.Add(p.expires)) {
			return nil, ErrExpired
		}
	} else if d := now.Sub(p.amzDate); d > skew || d < -skew {
		return nil, ErrSkew
	}

	payload := r.Header.Get("X-Amz-Content-Sha256")
	if p.presigned {
		if payload == "" {
			payload = q.Get("X-Amz-Content-Sha256")
		}
		if payload == "" {
			payload = UnsignedPayload
		}
	} else if payload == "" {
		// Header-signed requests must carry it for S3.
		return nil, errf(400, "InvalidRequest", "Missing required header for this request: x-amz-content-sha256")
	}
	switch payload {
	case UnsignedPayload, StreamingSigned, StreamingSignedTrail, StreamingUnsignedTrl:
	default:
		if len(payload) != 64 {
			return nil, errf(400, "InvalidArgument", "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-* or a SHA-256 hex digest")
		}
		if _, err := hex.DecodeString(payload); err != nil {
			return nil, errf(400, "InvalidArgument", "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-* or a SHA-256 hex digest")
		}
	}
	if p.presigned && strings.HasPrefix(payload, "STREAMING-") {
		return nil, errf(400, "InvalidRequest", "streaming payloads need header authentication")
	}

	// Headers that change what is stored must be covered by the signature (S3 answers
	// AccessDenied "There were headers present in the request which were not signed").
	for k := range r.Header {
		lk := strings.ToLower(k)
		if strings.HasPrefix(lk, "x-amz-meta-") || strings.HasPrefix(lk, "x-amz-copy-source") || lk == "x-amz-metadata-directive" {
			found := false
			for _, sh := range p.signedHeaders {
				found = found || sh == lk
			}
			if !found {
				return nil, errf(403, "AccessDenied", "There were headers present in the request which were not signed: %s", lk)
			}
		}
	}
	creq, err := canonicalRequest(r, p, payload)
	if err != nil {
		return nil, err
	}
	scope := p.date + "/" + p.region + "/" + p.service + "/aws4_request"
	sts := algorithm + "\n" + p.amzDate.UTC().Format(timeFormat) + "\n" + scope + "\n" + hexSHA256([]byte(creq))
	key := v.signingKey(secret, p.date, p.region, p.service)
	want := hmacSHA256(key, []byte(sts))
	got, err := hex.DecodeString(p.signature)
	if err != nil || !hmac.Equal(want, got) {
		return nil, ErrSignature
	}

	res := &Result{AccessKey: p.accessKey, Presigned: p.presigned, ContentSHA256: payload, DecodedLength: r.ContentLength, Trailer: http.Header{}}
	body := io.Reader(r.Body)
	if r.Body == nil {
		body = http.NoBody
	}
	switch payload {
	case UnsignedPayload:
		res.Body = body
	case StreamingSigned, StreamingSignedTrail, StreamingUnsignedTrl:
		res.Chunked = true
		res.DecodedLength = -1
		if s := r.Header.Get("X-Amz-Decoded-Content-Length"); s != "" {
			n, perr := strconv.ParseInt(s, 10, 64)
			if perr != nil || n < 0 {
				return nil, errf(400, "InvalidArgument", "bad x-amz-decoded-content-length")
			}
			res.DecodedLength = n
		} else if payload == StreamingSigned {
			return nil, errf(411, "MissingContentLength", "You must provide the x-amz-decoded-content-length header.")
		}
		cr := &chunkedReader{
			r:       newLineReader(body),
			signed:  payload != StreamingUnsignedTrl,
			trailer: payload != StreamingSigned,
			want:    res.DecodedLength,
			out:     res.Trailer,
		}
		if cr.signed {
			cr.key, cr.prevSig = key, p.signature
			cr.stsPrefix = p.amzDate.UTC().Format(timeFormat) + "\n" + scope + "\n"
		}
		if cr.trailer {
			for _, t := range strings.Split(strings.Join(r.Header.Values("X-Amz-Trailer"), ","), ",") {
				if t = strings.ToLower(strings.TrimSpace(t)); t != "" {
					cr.allowed = append(cr.allowed, t)
				}
			}
		}
		res.Body = cr
	default:
		res.Body = &digestReader{r: body, want: payload, h: sha256.New()}
	}
	return res, nil
}

func (v *Verifier) signingKey(secret, date, region, service string) []byte {
	id := secret + "\x00" + date + "\x00" + region + "\x00" + service
	v.mu.Lock()
	defer v.mu.Unlock()
	if k, ok := v.keys[id]; ok {
		return k
	}
	if v.keys == nil || len(v.keys) > 1000 {
		v.keys = map[string][]byte{}
	}
	k := hmacSHA256([]byte("AWS4"+secret), []byte(date))
	k = hmacSHA256(k, []byte(region))
	k = hmacSHA256(k, []byte(service))
	k = hmacSHA256(k, []byte("aws4_request"))
	v.keys[id] = k
	return k
}

// parseAuthorization parses
// "AWS4-HMAC-SHA256 Credential=AK/20250101/us-east-1/s3/aws4_request, SignedHeaders=a;b, Signature=hex".
func parseAuthorization(h string) (*authParams, error) {
	if len(h) > maxAuthorizationBytes {
		return nil, errf(400, "AuthorizationHeaderMalformed", "authorization header too long")
	}
	alg, rest, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || alg != algorithm {
		if strings.HasPrefix(h, "AWS ") {
			return nil, errf(501, "NotImplemented", "Signature Version 2 is not implemented; use AWS4-HMAC-SHA256")
		}
		return nil, errf(400, "AuthorizationHeaderMalformed", "unsupported authorization type")
	}
	p := &authParams{}
	var cred, signed, sig string
	var seen int
	for _, f := range strings.Split(rest, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(f), "=")
		if !ok {
			return nil, errf(400, "AuthorizationHeaderMalformed", "malformed authorization field %q", f)
		}
		switch k {
		case "Credential":
			cred, seen = val, seen|1
		case "SignedHeaders":
			signed, seen = val, seen|2
		case "Signature":
			sig, seen = val, seen|4
		default:
			return nil, errf(400, "AuthorizationHeaderMalformed", "unknown authorization field %q", k)
		}
	}
	if seen != 7 {
		return nil, errf(400, "AuthorizationHeaderMalformed", "authorization header needs Credential, SignedHeaders and Signature")
	}
	if err := p.setCredential(cred); err != nil {
		return nil, err
	}
	if err := p.setSigned(signed); err != nil {
		return nil, err
	}
	if len(sig) != 64 {
		return nil, ErrSignature
	}
	p.signature = sig
	return p, nil
}

func (p *authParams) setCredential(cred string) error {
	parts := strings.Split(cred, "/")
	if len(parts) != 5 || parts[4] != "aws4_request" || parts[0] == "" || len(parts[1]) != 8 || parts[2] == "" {
		return errf(400, "AuthorizationHeaderMalformed", "malformed credential %q", cred)
	}
	if _, err := time.Parse(dateFormat, parts[1]); err != nil {
		return errf(400, "AuthorizationHeaderMalformed", "malformed credential date %q", parts[1])
	}
	p.accessKey, p.date, p.region, p.service = parts[0], parts[1], parts[2], parts[3]
	return nil
}

func (p *authParams) setSigned(s string) error {
	if s == "" {
		return errf(400, "AuthorizationHeaderMalformed", "no signed headers")
	}
	hs := strings.Split(s, ";")
	hasHost := false
	for i, h := range hs {
		if h == "" || h != strings.ToLower(h) || (i > 0 && hs[i-1] >= h) {
			return errf(400, "AuthorizationHeaderMalformed", "signed headers must be sorted lower-case names")
		}
		hasHost = hasHost || h == "host"
	}
	if !hasHost {
		return errf(400, "AuthorizationHeaderMalformed", "the host header must be signed")
	}
	p.signedHeaders = hs
	return nil
}

func parsePresigned(q url.Values) (*authParams, error) {
	bad := func(m string) error { return errf(400, "AuthorizationQueryParametersError", "%s", m) }
	if q.Get("X-Amz-Algorithm") != algorithm {
		return nil, bad("X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"")
	}
	p := &authParams{presigned: true}
	if err := p.setCredential(q.Get("X-Amz-Credential")); err != nil {
		return nil, bad(err.(*Error).Message)
	}
	t, err := time.Parse(timeFormat, q.Get("X-Amz-Date"))
	if err != nil {
		return nil, bad("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"")
	}
	p.amzDate = t
	exp, err := strconv.ParseInt(q.Get("X-Amz-Expires"), 10, 64)
	if err != nil || exp < 0 {
		return nil, bad("X-Amz-Expires should be a number")
	}
	if exp < 1 || time.Duration(exp)*time.Second > maxPresignExpiry {
		return nil, bad("X-Amz-Expires must be between 1 and 604800 seconds")
	}
	p.expires = time.Duration(exp) * time.Second
	if err := p.setSigned(q.Get("X-Amz-SignedHeaders")); err != nil {
		return nil, bad(err.(*Error).Message)
	}
	sig := q.Get("X-Amz-Signature")
	if len(sig) != 64 {
		return nil, ErrSignature
	}
	p.signature = sig
	return p, nil
}

// canonicalRequest builds the canonical request of AWS's SigV4 for S3 (paths encoded once,
// not normalised).
func canonicalRequest(r *http.Request, p *authParams, payload string) (string, error) {
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte('\n')
	path := r.URL.Path
	if path == "" {
		path = "/"
	}
	b.WriteString(EncodePath(path))
	b.WriteByte('\n')
	b.WriteString(canonicalQuery(r.URL.RawQuery, p.presigned))
	b.WriteByte('\n')
	for _, h := range p.signedHeaders {
		var vals []string
		switch h {
		case "host":
			vals = []string{r.Host}
		case "content-length":
			if v := r.Header.Values("Content-Length"); len(v) > 0 {
				vals = v
			} else if r.ContentLength >= 0 {
				vals = []string{strconv.FormatInt(r.ContentLength, 10)}
			}
		case "transfer-encoding":
			vals = r.TransferEncoding
			if len(vals) == 0 {
				vals = r.Header.Values("Transfer-Encoding")
			}
		default:
			vals = r.Header.Values(h)
		}
		b.WriteString(h)
		b.WriteByte(':')
		for i, v := range vals {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(trimAll(v))
		}
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(p.signedHeaders, ";"))
	b.WriteByte('\n')
	b.WriteString(payload)
	return b.String(), nil
}

// trimAll trims a header value and collapses runs of spaces, as SigV4 requires.
func trimAll(s string) string {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "  ") {
		return s
	}
	var b strings.Builder
	space := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == ' ' {
			if space {
				continue
			}
			space = true
		} else {
			space = false
		}
		b.WriteByte(c)
	}
	return b.String()
}

func canonicalQuery(raw string, presigned bool) string {
	type kv struct{ k, v string }
	var pairs []kv
	for _, part := range strings.Split(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		dk, err := url.QueryUnescape(k)
		if err != nil {
			dk = k
		}
		dv, err := url.QueryUnescape(v)
		if err != nil {
			dv = v
		}
		if presigned && dk == "X-Amz-Signature" {
			continue
		}
		pairs = append(pairs, kv{Encode(dk), Encode(dv)})
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].k != pairs[j].k {
			return pairs[i].k < pairs[j].k
		}
		return pairs[i].v < pairs[j].v
	})
	var b strings.Builder
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.k)
		b.WriteByte('=')
		b.WriteString(p.v)
	}
	return b.String()
}

const upperhex = "0123456789ABCDEF"

func unreserved(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~'
}

// Encode percent-encodes every byte but A-Z a-z 0-9 - _ . ~ (AWS's URI encoding).
func Encode(s string) string { return encode(s, false) }

// EncodePath is Encode keeping '/'.
func EncodePath(s string) string { return encode(s, true) }

func encode(s string, keepSlash bool) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if !unreserved(s[i]) && !(keepSlash && s[i] == '/') {
			n++
		}
	}
	if n == 0 {
		return s
	}
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) || (keepSlash && c == '/') {
			b = append(b, c)
		} else {
			b = append(b, '%', upperhex[c>>4], upperhex[c&15])
		}
	}
	return string(b)
}

func hmacSHA256(key, data []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(data)
	return m.Sum(nil)
}

func hexSHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// digestReader checks the body against a hex SHA-256 at EOF.
type digestReader struct {
	r    io.Reader
	want string
	h    interface {
		io.Writer
		Sum([]byte) []byte
	}
	done bool
}

func (d *digestReader) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	d.h.Write(p[:n])
	if err == io.EOF && !d.done {
		d.done = true
		if hex.EncodeToString(d.h.Sum(nil)) != d.want {
			return n, ErrContentSHA
		}
	}
	return n, err
}

// VerifyPostPolicy checks the signature of a browser POST upload: the form's
// x-amz-credential, x-amz-date and x-amz-signature over its base64 policy document. It
// does not check the policy's conditions (the caller does).
func (v *Verifier) VerifyPostPolicy(credential, amzDate, policy, signature string) (accessKey string, err error) {
	p := &authParams{}
	if err := p.setCredential(credential); err != nil {
		return "", err
	}
	t, perr := time.Parse(timeFormat, amzDate)
	if perr != nil || t.UTC().Format(dateFormat) != p.date {
		return "", errf(400, "AuthorizationQueryParametersError", "x-amz-date must be the credential's date in ISO8601 long format")
	}
	if p.service != "s3" {
		return "", errf(400, "AuthorizationHeaderMalformed", "the credential's service must be 's3'")
	}
	secret, ok := v.Secret(p.accessKey)
	if !ok {
		return "", ErrAccessKey
	}
	want := hmacSHA256(v.signingKey(secret, p.date, p.region, p.service), []byte(policy))
	got, derr := hex.DecodeString(signature)
	if derr != nil || !hmac.Equal(want, got) {
		return "", ErrSignature
	}
	return p.accessKey, nil
}
