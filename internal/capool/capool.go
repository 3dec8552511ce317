// Package capool reads the PEM file of certificate authorities that an
// operator names (ca_file) for a server whose certificate the system's CAs
// do not sign: a private SMTP relay, a Redis with its own CA.
package capool

import (
	"crypto/x509"
	"fmt"
	"os"
)

// Load returns the CAs in the PEM file at path, or an error naming the
// option (ca_file) and what is wrong with the file.
func Load(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("ca_file %s: no PEM certificate in it", path)
	}
	return pool, nil
}
