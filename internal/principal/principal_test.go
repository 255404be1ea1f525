package principal

import "testing"

// The examples of Kafka's documentation of ssl.principal.mapping.rules.
func TestSSLRules(t *testing.T) {
	for _, c := range []struct {
		rules, subject, want string
	}{
		{"", "CN=kafka-client,OU=Eng,O=Example,C=US", "CN=kafka-client,OU=Eng,O=Example,C=US"},
		{"DEFAULT", "CN=a", "CN=a"},
		{`RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,DEFAULT`, "CN=serviceuser,OU=ServiceUsers,O=Unknown,L=Unknown,ST=Unknown,C=Unknown", "serviceuser"},
		{`RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,DEFAULT`, "CN=adminUser,OU=Admin,O=Unknown", "CN=adminUser,OU=Admin,O=Unknown"},
		{`RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L,DEFAULT`, "CN=adminUser,OU=Admin,O=Unknown,L=Unknown,ST=Unknown,C=Unknown", "adminuser@admin"},
		{`RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L,DEFAULT`, "CN=Duke,OU=JavaSoft,O=Sun", "duke"},
		{`RULE:^CN=(.*)$/$1/U`, "CN=duke", "DUKE"},
		{`RULE:^CN=(.*?)\/x$/$1x/`, "CN=a/x", "ax"},
	} {
		m, err := ParseSSLRules(c.rules)
		if err != nil {
			t.Fatalf("%q: %v", c.rules, err)
		}
		got, err := m.Name(c.subject)
		if err != nil || got != c.want {
			t.Errorf("rules %q on %q: %q (%v), want %q", c.rules, c.subject, got, err, c.want)
		}
	}
	m, _ := ParseSSLRules(`RULE:^CN=(.*)$/$1/`)
	if _, err := m.Name("O=no-cn"); err == nil {
		t.Error("a subject no rule matches must be refused (no DEFAULT)")
	}
	for _, bad := range []string{"RULE:^CN=(.*)$", "RULE:(/x/", "NONSENSE", "DEFAULT DEFAULT"} {
		if _, err := ParseSSLRules(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
