package fakestub

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"time"

	"github.com/hyperledger/fabric-protos-go-apiv2/msp"
	"google.golang.org/protobuf/proto"
)

// attrOID is the Fabric-CA attribute extension (fabric-chaincode-go attrmgr).
var attrOID = asn1.ObjectIdentifier{1, 2, 3, 4, 5, 6, 7, 8, 1}

// Identity is a transaction creator: MSP ID plus the serialized identity
// (msp.SerializedIdentity protobuf with a PEM certificate) that the peer
// hands to chaincode as GetCreator().
type Identity struct {
	MSPID   string
	Creator []byte
}

// NewIdentity makes a self-signed P-256 certificate with common name cn and,
// when attrs is non-nil, the Fabric-CA attribute extension whose raw value is
// the JSON {"attrs":{...}} — the same layout the network launcher must issue.
func NewIdentity(mspID, cn string, attrs map[string]string) (Identity, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Identity{}, fmt.Errorf("generating key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{mspID}, OrganizationalUnit: []string{"client"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	if attrs != nil {
		raw, err := json.Marshal(map[string]map[string]string{"attrs": attrs})
		if err != nil {
			return Identity{}, fmt.Errorf("encoding attributes: %w", err)
		}
		tmpl.ExtraExtensions = []pkix.Extension{{Id: attrOID, Value: raw}}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return Identity{}, fmt.Errorf("creating certificate: %w", err)
	}
	sid := &msp.SerializedIdentity{
		Mspid:   mspID,
		IdBytes: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
	}
	creator, err := proto.Marshal(sid)
	if err != nil {
		return Identity{}, fmt.Errorf("marshalling identity: %w", err)
	}
	return Identity{MSPID: mspID, Creator: creator}, nil
}

// WithRole is NewIdentity with the synthreg.role attribute set to role.
func WithRole(mspID, role string) (Identity, error) {
	return NewIdentity(mspID, role+"@"+mspID, map[string]string{"synthreg.role": role})
}
