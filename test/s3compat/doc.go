// Package s3compat holds the heavy S3 client compatibility tests of Holdfast's S3 endpoint
// (aws-sdk-go-v2, minio-go, the aws CLI and minio-go's own functional test program), kept
// in a nested module so that the library's go.mod does not depend on the clients.
package s3compat
