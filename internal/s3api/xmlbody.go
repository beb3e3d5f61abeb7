package s3api

import (
	"encoding/xml"

	"github.com/holdfast/holdfast/internal/blob"
)

// The XML bodies clients send, read by one function each so that they are fuzzed as the
// handlers use them (FuzzXMLBodies). Bodies are already bounded by readSmallBody; a body
// that does not parse, or parses to more items than S3 allows, is MalformedXML.

// deleteRequest is a DeleteObjects (POST ?delete) body.
type deleteRequest struct {
	Quiet   bool `xml:"Quiet"`
	Objects []struct {
		Key       string `xml:"Key"`
		VersionID string `xml:"VersionId"`
	} `xml:"Object"`
}

// maxDeleteObjects is S3's limit of keys in one DeleteObjects.
const maxDeleteObjects = 1000

func parseDelete(raw []byte) (*deleteRequest, error) {
	var req deleteRequest
	if err := xml.Unmarshal(raw, &req); err != nil || len(req.Objects) > maxDeleteObjects {
		return nil, errMalformedXML
	}
	return &req, nil
}

// parseComplete reads a CompleteMultipartUpload body: 1 to MaxParts parts, their order
// and ETags checked later by the store.
func parseComplete(raw []byte) ([]blob.CompletePart, error) {
	var req struct {
		Parts []struct {
			PartNumber int    `xml:"PartNumber"`
			ETag       string `xml:"ETag"`
		} `xml:"Part"`
	}
	if err := xml.Unmarshal(raw, &req); err != nil || len(req.Parts) == 0 || len(req.Parts) > blob.MaxParts {
		return nil, errMalformedXML
	}
	parts := make([]blob.CompletePart, len(req.Parts))
	for i, p := range req.Parts {
		parts[i] = blob.CompletePart{Number: p.PartNumber, ETag: p.ETag}
	}
	return parts, nil
}
