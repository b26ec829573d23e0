package tlstest

import (
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"os"
)

// oakley2 is the 1024-bit MODP group of RFC 2409 §6.2: the weak DH group
// that old servers still serve.
const oakley2 = "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381FFFFFFFFFFFFFFFF"

// DH1024 returns the RFC 2409 1024-bit prime.
func DH1024() *big.Int {
	p, _ := new(big.Int).SetString(oakley2, 16)
	return p
}

// WriteDHParams writes PKCS #3 DH parameters (prime p, generator 2) as
// PEM, the format gnutls-serv --dhparams and openssl s_server -dhparam read.
func WriteDHParams(path string, p *big.Int) error {
	der, err := asn1.Marshal(struct{ P, G *big.Int }{p, big.NewInt(2)})
	if err != nil {
		return err
	}
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "DH PARAMETERS", Bytes: der}), 0o600)
}
