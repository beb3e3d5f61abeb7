package s3compat

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/blob"
	"github.com/holdfast/holdfast/internal/natstest"
	"github.com/holdfast/holdfast/internal/s3api"
	"github.com/nats-io/nats.go/jetstream"
)

const (
	accessKey = "holdfast"
	secretKey = "holdfastdev"
)

type server struct {
	URL    string // http(s)://127.0.0.1:port
	Addr   string
	Store  *blob.Store
	CAPool *x509.CertPool
	Client *http.Client // dials Addr whatever the host name (virtual hosts)

	mu    sync.Mutex
	modes map[string]int // payload modes seen (x-amz-content-sha256), "te:chunked"
}

func (s *server) seen(mode string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.modes[mode]
}

func quietLogger() *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("HOLDFAST_S3_DEBUG") == "1" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// startServer runs a real embedded JetStream, the blob store and the S3 endpoint.
func startServer(t testing.TB, useTLS bool) *server {
	t.Helper()
	ns := natstest.Server(t)
	nc := natstest.Conn(t, ns)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := blob.Open(context.Background(), js, blob.Options{GCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h := s3api.NewHandler(st, s3api.Options{
		Credentials: []s3api.Credential{{AccessKey: accessKey, SecretKey: secretKey}},
		BaseDomains: []string{"localhost"},
		Logger:      quietLogger(),
	})
	s := &server{Store: st, modes: map[string]int{}}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.modes[r.Header.Get("X-Amz-Content-Sha256")]++
		if len(r.TransferEncoding) > 0 {
			s.modes["te:"+r.TransferEncoding[0]]++
		}
		s.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	if useTLS {
		cert, pool := selfSigned(t)
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		srv.StartTLS()
		s.CAPool = pool
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	s.Addr = srv.Listener.Addr().String()
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, s.Addr)
		},
		MaxIdleConnsPerHost: 16,
	}
	if useTLS {
		tr.TLSClientConfig = &tls.Config{RootCAs: s.CAPool}
		tr.ForceAttemptHTTP2 = false
	}
	s.Client = &http.Client{Transport: tr}
	return s
}

// selfSigned makes a certificate for localhost, *.localhost and 127.0.0.1.
func selfSigned(t testing.TB) (tls.Certificate, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "localhost"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		DNSNames:              []string{"localhost", "*.localhost"},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: c}, pool
}
