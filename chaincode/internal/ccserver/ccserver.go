// Package ccserver runs a synthreg chaincode as an external service (CCaaS).
//
// Who calls: the thin mains in cmd/ganledger and cmd/keyvault. They pass the
// process environment in as a lookup function (os.LookupEnv); nothing below
// reads the environment itself.
// Where data lives: TLS key, certificate and client CA are PEM files whose
// paths come from the configuration; the peer connects to Address as a gRPC
// client (connection.json written by the launcher's external builder).
// What fails when: a missing or malformed setting -> *ConfigError (before any
// socket is opened); unreadable TLS file -> *ConfigError; listen/serve
// failures are returned from Serve.
package ccserver

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/hyperledger/fabric-chaincode-go/v2/shim"
)

// Environment variable names (read only by the mains, via LoadConfig).
const (
	EnvAddress     = "CHAINCODE_SERVER_ADDRESS"
	EnvID          = "CHAINCODE_ID"
	EnvIDFallback  = "CORE_CHAINCODE_ID_NAME"
	EnvTLSDisabled = "CHAINCODE_TLS_DISABLED"
	EnvTLSKey      = "CHAINCODE_TLS_KEY"
	EnvTLSCert     = "CHAINCODE_TLS_CERT"
	EnvTLSClientCA = "CHAINCODE_CLIENT_CA_CERT"
)

// Config is the complete, validated server configuration.
type Config struct {
	Address      string // host:port to listen on
	ChaincodeID  string // package id, e.g. "keyvault_1.0:ab12..."
	TLSDisabled  bool
	KeyFile      string // PEM private key (TLS on)
	CertFile     string // PEM certificate (TLS on)
	ClientCAFile string // PEM CA for client auth; "" = no client auth
}

// ConfigError names the setting that is missing or wrong.
type ConfigError struct {
	Setting string
	Reason  string
	Cause   error
}

func (e *ConfigError) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("chaincode server config: %s: %s: %v", e.Setting, e.Reason, e.Cause)
	}
	return fmt.Sprintf("chaincode server config: %s: %s", e.Setting, e.Reason)
}

// Unwrap returns the cause.
func (e *ConfigError) Unwrap() error { return e.Cause }

// LoadConfig builds a Config from a lookup function (os.LookupEnv at the edge).
func LoadConfig(lookup func(string) (string, bool)) (Config, error) {
	get := func(k string) string {
		v, _ := lookup(k)
		return strings.TrimSpace(v)
	}
	cfg := Config{
		Address:      get(EnvAddress),
		ChaincodeID:  get(EnvID),
		KeyFile:      get(EnvTLSKey),
		CertFile:     get(EnvTLSCert),
		ClientCAFile: get(EnvTLSClientCA),
	}
	if cfg.ChaincodeID == "" {
		cfg.ChaincodeID = get(EnvIDFallback)
	}
	if cfg.Address == "" {
		return Config{}, &ConfigError{Setting: EnvAddress, Reason: "required (host:port to listen on)"}
	}
	if !strings.Contains(cfg.Address, ":") {
		return Config{}, &ConfigError{Setting: EnvAddress, Reason: fmt.Sprintf("%q is not host:port", cfg.Address)}
	}
	if cfg.ChaincodeID == "" {
		return Config{}, &ConfigError{Setting: EnvID, Reason: "required (chaincode package id; " + EnvIDFallback + " is also accepted)"}
	}
	if raw := get(EnvTLSDisabled); raw != "" {
		disabled, err := strconv.ParseBool(raw)
		if err != nil {
			return Config{}, &ConfigError{Setting: EnvTLSDisabled, Reason: fmt.Sprintf("%q is not a boolean", raw), Cause: err}
		}
		cfg.TLSDisabled = disabled
	}
	if !cfg.TLSDisabled {
		if cfg.KeyFile == "" {
			return Config{}, &ConfigError{Setting: EnvTLSKey, Reason: "required when TLS is on (set " + EnvTLSDisabled + "=true to disable)"}
		}
		if cfg.CertFile == "" {
			return Config{}, &ConfigError{Setting: EnvTLSCert, Reason: "required when TLS is on (set " + EnvTLSDisabled + "=true to disable)"}
		}
	}
	return cfg, nil
}

// TLSProperties reads the PEM files named by cfg.
func (cfg Config) TLSProperties() (shim.TLSProperties, error) {
	if cfg.TLSDisabled {
		return shim.TLSProperties{Disabled: true}, nil
	}
	read := func(setting, path string) ([]byte, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, &ConfigError{Setting: setting, Reason: "cannot read " + path, Cause: err}
		}
		return b, nil
	}
	key, err := read(EnvTLSKey, cfg.KeyFile)
	if err != nil {
		return shim.TLSProperties{}, err
	}
	cert, err := read(EnvTLSCert, cfg.CertFile)
	if err != nil {
		return shim.TLSProperties{}, err
	}
	props := shim.TLSProperties{Key: key, Cert: cert}
	if cfg.ClientCAFile != "" {
		if props.ClientCACerts, err = read(EnvTLSClientCA, cfg.ClientCAFile); err != nil {
			return shim.TLSProperties{}, err
		}
	}
	return props, nil
}

// Server builds the shim server for cc; Start() on it blocks serving.
func Server(cfg Config, cc shim.Chaincode) (*shim.ChaincodeServer, error) {
	tlsProps, err := cfg.TLSProperties()
	if err != nil {
		return nil, err
	}
	return &shim.ChaincodeServer{CCID: cfg.ChaincodeID, Address: cfg.Address, CC: cc, TLSProps: tlsProps}, nil
}

// Run is the whole life of a chaincode server process: configuration from
// lookup, then serve cc until the listener fails.
func Run(name string, lookup func(string) (string, bool), cc shim.Chaincode) error {
	cfg, err := LoadConfig(lookup)
	if err != nil {
		return err
	}
	srv, err := Server(cfg, cc)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "%s: starting chaincode server %s on %s (tls=%v, client auth=%v)\n",
		name, cfg.ChaincodeID, cfg.Address, !cfg.TLSDisabled, cfg.ClientCAFile != "" && !cfg.TLSDisabled)
	if err := srv.Start(); err != nil {
		return fmt.Errorf("chaincode server on %s stopped: %w", cfg.Address, err)
	}
	return nil
}
