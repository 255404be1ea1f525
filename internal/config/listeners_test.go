package config

import (
	"strings"
	"testing"
)

func TestListeners(t *testing.T) {
	c, err := Load("test", []string{"--listen", "127.0.0.1:9092"}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Listeners) != 1 || c.Listeners[0] != (Listener{Protocol: Plaintext, Addr: "127.0.0.1:9092", Advertised: "127.0.0.1:9092"}) {
		t.Errorf("a bare host:port: %+v", c.Listeners)
	}
	c, err = Load("test", []string{
		"--listen", "PLAINTEXT://0.0.0.0:9092, sasl_ssl://0.0.0.0:9093",
		"--advertised", "b1.example:9092,SASL_SSL://b1.example:9093",
		"--tls-cert", "c.pem", "--tls-key", "k.pem",
	}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := []Listener{
		{Protocol: Plaintext, Addr: "0.0.0.0:9092", Advertised: "b1.example:9092"},
		{Protocol: SASLSSL, Addr: "0.0.0.0:9093", Advertised: "b1.example:9093"},
	}
	if len(c.Listeners) != 2 || c.Listeners[0] != want[0] || c.Listeners[1] != want[1] {
		t.Errorf("listeners %+v, want %+v", c.Listeners, want)
	}
	if !c.Listeners[1].TLS() || !c.Listeners[1].SASL() || c.Listeners[0].TLS() || c.Listeners[0].SASL() {
		t.Error("TLS/SASL of the protocols")
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--listen", "HTTP://127.0.0.1:1"}, "unknown security protocol"},
		{[]string{"--listen", "SSL://127.0.0.1:1,SSL://127.0.0.1:2", "--tls-cert", "c", "--tls-key", "k"}, "a second SSL listener"},
		{[]string{"--listen", "127.0.0.1:1,SSL://127.0.0.1:2", "--advertised", "a:1", "--tls-cert", "c", "--tls-key", "k"}, "1 addresses for 2 listeners"},
		{[]string{"--listen", "127.0.0.1:1", "--advertised", "SSL://a:1"}, "protocol SSL where --listen has PLAINTEXT"},
		{[]string{"--listen", "SSL://127.0.0.1:1"}, "need --tls-cert and --tls-key"},
		{[]string{"--admin-tls"}, "need --tls-cert and --tls-key"},
		{[]string{"--tls-cert", "c"}, "--tls-cert and --tls-key go together"},
		{[]string{"--listen", "SSL://127.0.0.1:1", "--tls-cert", "c", "--tls-key", "k", "--tls-client-auth", "required"}, "needs --tls-client-ca"},
		{[]string{"--listen", "SSL://127.0.0.1:1", "--tls-cert", "c", "--tls-key", "k", "--tls-client-auth", "maybe", "--tls-client-ca", "ca"}, "want none, requested or required"},
		{[]string{"--tls-client-ca", "ca"}, "without an SSL or SASL_SSL listener"},
		{[]string{"--listen", "SASL_PLAINTEXT://127.0.0.1:1", "--sasl-mechanisms", ""}, "needs at least one --sasl-mechanisms"},
		{[]string{"--sasl-mechanisms", "GSSAPI"}, `unknown mechanism "GSSAPI"`},
		{[]string{"--sasl-mechanisms", "OAUTHBEARER"}, "needs --sasl-oauthbearer-jwks"},
		{[]string{"--authorizer", "opa"}, "want none or acl"},
		{[]string{"--super-users", "admin"}, "not a principal"},
		{[]string{"--ssl-principal-mapping-rules", "RULE:^CN=(.*)$"}, "ssl-principal-mapping-rules"},
		{[]string{"--connections-max-reauth", "-1s"}, "must not be negative"},
	} {
		_, err := Load("test", tc.args, env(nil))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error with %q", tc.args, err, tc.want)
		}
	}
	c, err = Load("test", []string{"--super-users", "User:admin; User:broker", "--listen", "SSL://127.0.0.1:1", "--tls-cert", "c", "--tls-key", "k", "--tls-client-ca", "ca"}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if su := c.Security.SuperUserList(); len(su) != 2 || su[1] != "User:broker" {
		t.Errorf("super users %q", su)
	}
	if c.Security.ClientAuth() != "required" {
		t.Errorf("client auth with a CA defaults to %q, want required", c.Security.ClientAuth())
	}
}
