package ccserver

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestLoadConfigRequiresSettings(t *testing.T) {
	cases := []struct {
		env     map[string]string
		setting string
	}{
		{map[string]string{}, EnvAddress},
		{map[string]string{EnvAddress: "nocolon", EnvID: "x"}, EnvAddress},
		{map[string]string{EnvAddress: "127.0.0.1:9999"}, EnvID},
		{map[string]string{EnvAddress: "127.0.0.1:9999", EnvID: "x"}, EnvTLSKey},
		{map[string]string{EnvAddress: "127.0.0.1:9999", EnvID: "x", EnvTLSKey: "k"}, EnvTLSCert},
		{map[string]string{EnvAddress: "127.0.0.1:9999", EnvID: "x", EnvTLSDisabled: "maybe"}, EnvTLSDisabled},
	}
	for _, c := range cases {
		_, err := LoadConfig(env(c.env))
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Setting != c.setting {
			t.Fatalf("%v: err %v, want ConfigError for %s", c.env, err, c.setting)
		}
	}
}

func TestLoadConfigFallbackIDAndTLSOff(t *testing.T) {
	cfg, err := LoadConfig(env(map[string]string{EnvAddress: "0.0.0.0:7052", EnvIDFallback: "kv:abc", EnvTLSDisabled: "true"}))
	if err != nil || cfg.ChaincodeID != "kv:abc" || !cfg.TLSDisabled {
		t.Fatalf("%+v %v", cfg, err)
	}
	props, err := cfg.TLSProperties()
	if err != nil || !props.Disabled {
		t.Fatalf("%+v %v", props, err)
	}
}

func TestTLSPropertiesReadsFiles(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{"key.pem": "KEY", "cert.pem": "CERT", "ca.pem": "CA"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := LoadConfig(env(map[string]string{
		EnvAddress: "127.0.0.1:7052", EnvID: "gl:1",
		EnvTLSKey: filepath.Join(dir, "key.pem"), EnvTLSCert: filepath.Join(dir, "cert.pem"), EnvTLSClientCA: filepath.Join(dir, "ca.pem"),
	}))
	if err != nil {
		t.Fatal(err)
	}
	props, err := cfg.TLSProperties()
	if err != nil || props.Disabled || string(props.Key) != "KEY" || string(props.Cert) != "CERT" || string(props.ClientCACerts) != "CA" {
		t.Fatalf("%+v %v", props, err)
	}
	cfg.ClientCAFile = filepath.Join(dir, "missing.pem")
	var ce *ConfigError
	if _, err := cfg.TLSProperties(); !errors.As(err, &ce) || ce.Setting != EnvTLSClientCA {
		t.Fatalf("missing CA file: %v", err)
	}
}
