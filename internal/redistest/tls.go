package redistest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TLSFiles are the PEM files of a server started with [StartTLS], in its
// directory: a certificate authority made for that server alone, the
// server's certificate and key, and a client certificate and key that the
// authority also signed.
type TLSFiles struct {
	CA         string // the authority's certificate: what clients trust
	ServerCert string // for 127.0.0.1, ::1 and localhost
	ServerKey  string
	ClientCert string // for servers started with "--tls-auth-clients", "yes"
	ClientKey  string
}

// StartTLS starts a server like [Start] that accepts only TLS connections
// (TLS 1.2 and 1.3). Its certificate, for 127.0.0.1, ::1 and localhost, is
// signed by a certificate authority that StartTLS creates in the server's
// directory, which nothing else trusts: clients must be given it
// ([Server.TLSConfig], or [Server.TLS] for the file). Clients are not
// asked for a certificate unless args say "--tls-auth-clients", "yes";
// the harness's own clients present [TLSFiles.ClientCert] anyway.
//
// [Server.URL] is then a rediss:// URL, and [Server.Client], [Server.Do]
// and the readiness checks speak TLS. The redis-server on PATH must be
// built with TLS, as Debian's is; if it is not, the server fails to start
// and the test with it, showing redis-server's complaint.
func StartTLS(t testing.TB, args ...string) *Server {
	t.Helper()
	RequireRedis(t)
	dir := t.TempDir()
	files, err := makeTLSFiles(dir)
	if err != nil {
		t.Fatalf("redistest: creating certificates: %v", err)
	}
	conf, err := files.clientConfig()
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	tlsArgs := []string{
		"--tls-cert-file", files.ServerCert,
		"--tls-key-file", files.ServerKey,
		"--tls-ca-cert-file", files.CA,
		"--tls-auth-clients", "no",
		"--tls-protocols", "TLSv1.2 TLSv1.3",
	}
	return startIn(t, dir, false, &serverTLS{files: files, conf: conf}, append(tlsArgs, args...))
}

// serverTLS is what a TLS server's clients need.
type serverTLS struct {
	files *TLSFiles
	conf  *tls.Config // trusts the CA, presents the client certificate
}

// TLS returns the server's certificate files, or nil for a server started
// without TLS.
func (s *Server) TLS() *TLSFiles {
	if s.tls == nil {
		return nil
	}
	f := *s.tls.files
	return &f
}

// TLSConfig returns a new client configuration that trusts the server's
// certificate authority and presents the client certificate, or nil for a
// server started without TLS.
func (s *Server) TLSConfig() *tls.Config {
	if s.tls == nil {
		return nil
	}
	return s.tls.conf.Clone()
}

func (f *TLSFiles) clientConfig() (*tls.Config, error) {
	caPEM, err := os.ReadFile(f.CA)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("no certificate in %s", f.CA)
	}
	cert, err := tls.LoadX509KeyPair(f.ClientCert, f.ClientKey)
	if err != nil {
		return nil, err
	}
	return &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// makeTLSFiles creates an authority, and a server and a client certificate
// it signs, valid from an hour ago for a day, as PEM files in dir.
func makeTLSFiles(dir string) (*TLSFiles, error) {
	f := &TLSFiles{
		CA:         filepath.Join(dir, "ca.pem"),
		ServerCert: filepath.Join(dir, "server.pem"),
		ServerKey:  filepath.Join(dir, "server-key.pem"),
		ClientCert: filepath.Join(dir, "client.pem"),
		ClientKey:  filepath.Join(dir, "client-key.pem"),
	}
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	ca := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "redistest CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	if err := writePEM(f.CA, "CERTIFICATE", caDER); err != nil {
		return nil, err
	}
	ca, err = x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage, certPath, keyPath string) error {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: cn},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		}
		if usage == x509.ExtKeyUsageServerAuth {
			tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
			tmpl.DNSNames = []string{"localhost"}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return err
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return err
		}
		if err := writePEM(certPath, "CERTIFICATE", der); err != nil {
			return err
		}
		return writePEM(keyPath, "PRIVATE KEY", keyDER)
	}
	if err := leaf(2, "redistest server", x509.ExtKeyUsageServerAuth, f.ServerCert, f.ServerKey); err != nil {
		return nil, err
	}
	if err := leaf(3, "redistest client", x509.ExtKeyUsageClientAuth, f.ClientCert, f.ClientKey); err != nil {
		return nil, err
	}
	return f, nil
}

func writePEM(path, typ string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}
