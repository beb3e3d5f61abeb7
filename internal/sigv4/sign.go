package sigv4

import (
	"encoding/hex"
	"net/http"
	"sort"
	"strings"
	"time"
)

// Sign adds a SigV4 Authorization header to r (header auth, service s3), signing host,
// every x-amz-* header and Content-Type/Content-MD5 if present. The payload mode is taken
// from X-Amz-Content-Sha256 (UNSIGNED-PAYLOAD if unset). For tests and internal clients.
func Sign(r *http.Request, accessKey, secret, region string, now time.Time) {
	now = now.UTC()
	r.Header.Set("X-Amz-Date", now.Format(timeFormat))
	payload := r.Header.Get("X-Amz-Content-Sha256")
	if payload == "" {
		payload = UnsignedPayload
		r.Header.Set("X-Amz-Content-Sha256", payload)
	}
	signed := []string{"host"}
	for k := range r.Header {
		lk := strings.ToLower(k)
		if strings.HasPrefix(lk, "x-amz-") || lk == "content-type" || lk == "content-md5" {
			signed = append(signed, lk)
		}
	}
	sort.Strings(signed)
	p := &authParams{signedHeaders: signed, presigned: false}
	creq, _ := canonicalRequest(r, p, payload)
	date := now.Format(dateFormat)
	scope := date + "/" + region + "/s3/aws4_request"
	sts := algorithm + "\n" + now.Format(timeFormat) + "\n" + scope + "\n" + hexSHA256([]byte(creq))
	v := &Verifier{}
	sig := hex.EncodeToString(hmacSHA256(v.signingKey(secret, date, region, "s3"), []byte(sts)))
	r.Header.Set("Authorization", algorithm+" Credential="+accessKey+"/"+scope+", SignedHeaders="+strings.Join(signed, ";")+", Signature="+sig)
}
