package server

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/vigilhq/vigil/internal/audit"
	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/ocsf"
)

// auditEvents reads every event of the audit topic as admin.
func auditEvents(t *testing.T, addr string, admin kgo.Opt) []ocsf.Event {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), admin, kgo.ConsumeTopics(audit.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, audit.Topic)
	if err != nil {
		t.Fatal(err)
	}
	want := int64(0)
	ends.Each(func(o kadm.ListedOffset) { want += o.Offset })
	var out []ocsf.Event
	for int64(len(out)) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d audit events", len(out), want)
		}
		if err := fs.Err0(); err != nil {
			t.Fatalf("read the audit topic: %v", err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			var e ocsf.Event
			if err := json.Unmarshal(r.Value, &e); err != nil {
				t.Fatalf("audit record is not JSON: %v", err)
			}
			out = append(out, e)
		})
	}
	return out
}

func str(e ocsf.Event, path string) string {
	v, _ := e.Get(path)
	s, _ := v.(string)
	return s
}

// waitAudit polls the audit topic until match has matched n events.
func waitAudit(t *testing.T, addr string, admin kgo.Opt, n int, what string, match func(ocsf.Event) bool) []ocsf.Event {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var got []ocsf.Event
		for _, e := range auditEvents(t, addr, admin) {
			if match(e) {
				got = append(got, e)
			}
		}
		if len(got) >= n || time.Now().After(deadline) {
			if len(got) != n {
				t.Fatalf("%s: %d audit events, want %d", what, len(got), n)
			}
			return got
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestAuditTrail: authentications (good and bad), a denial, and user and
// ACL changes each leave exactly one OCSF event on _vigil.audit, which
// even a super user cannot write to or delete; a flood of failed logins
// is summarised, and the broker stays responsive.
func TestAuditTrail(t *testing.T) {
	ts, _ := startSASLServer(t, func(c *config.Broker) {
		c.Security.Authorizer = "acl"
		c.Security.SuperUsers = "User:admin;User:ANONYMOUS"
		c.Security.AuditRate, c.Security.AuditBurst = 50, 100
	})
	plain := ts.srv.ListenerAddr(config.Plaintext).String()
	saslAddr := ts.srv.ListenerAddr(config.SASLPlaintext).String()
	addUsers(t, plain, map[string]string{"admin": "admin-secret", "dave": "dave-secret"})
	admin := kgo.SASL(scram.Auth{User: "admin", Pass: "admin-secret"}.AsSha512Mechanism())
	dave := kgo.SASL(scram.Auth{User: "dave", Pass: "dave-secret"}.AsSha512Mechanism())

	// A wrong password, then dave's denied write.
	if err := metadataErr(saslAddr, kgo.SASL(scram.Auth{User: "dave", Pass: "nope"}.AsSha512Mechanism())); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("wrong password: %v", err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(saslAddr), dave, kgo.DefaultProduceTopic("evidence"), kgo.RequestRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	err = cl.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr()
	cancel()
	cl.Close()
	if !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("dave's produce without an ACL: %v", err)
	}

	failures := waitAudit(t, saslAddr, admin, 1, "failed logins of dave", func(e ocsf.Event) bool {
		return e.ClassUID() == 3002 && str(e, "status") == "Failure" && str(e, "user.uid") == "User:dave"
	})
	if str(failures[0], "auth_protocol") != "SCRAM-SHA-512" || str(failures[0], "src_endpoint.ip") != "127.0.0.1" {
		t.Errorf("failed login event: %v", failures[0])
	}
	if err := ocsf.Validate(failures[0]); err != nil {
		t.Errorf("failed login event is not valid OCSF: %v", err)
	}
	waitAudit(t, saslAddr, admin, 1, "dave's successful login", func(e ocsf.Event) bool {
		return e.ClassUID() == 3002 && str(e, "status") == "Success" && str(e, "user.uid") == "User:dave"
	})
	// franz-go asks Metadata for the topic first, and stops there.
	denials := waitAudit(t, saslAddr, admin, 1, "dave's denied produce", func(e ocsf.Event) bool {
		return e.ClassUID() == 6003 && str(e, "actor.user.uid") == "User:dave" && str(e, "status") == "Failure"
	})
	if op := str(denials[0], "api.operation"); (op != "Metadata" && op != "Produce") || !strings.Contains(str(denials[0], "message"), `topic "evidence"`) {
		t.Errorf("denial event: %v", denials[0])
	}
	if err := ocsf.Validate(denials[0]); err != nil {
		t.Errorf("denial event is not valid OCSF: %v", err)
	}

	// A user change and an ACL change by the admin.
	acl, err := kgo.NewClient(kgo.SeedBrokers(saslAddr), admin)
	if err != nil {
		t.Fatal(err)
	}
	defer acl.Close()
	adm := kadm.NewClient(acl)
	b := kadm.NewACLs().Allow("User:dave").Topics("evidence").Operations(kadm.OpWrite)
	if res, err := adm.CreateACLs(context.Background(), b); err != nil || res[0].Err != nil {
		t.Fatalf("create ACL: %v %v", err, res)
	}
	if res, err := adm.AlterUserSCRAMs(context.Background(), nil, []kadm.UpsertSCRAM{{User: "erin", Mechanism: kadm.ScramSha256, Iterations: 4096, Password: "erin-secret"}}); err != nil || res.Error() != nil {
		t.Fatalf("add erin: %v %v", err, res.Error())
	}
	attach := waitAudit(t, saslAddr, admin, 1, "the ACL creation", func(e ocsf.Event) bool {
		return e.ClassUID() == 3001 && str(e, "activity_name") == "Attach Policy"
	})
	if str(attach[0], "actor.user.uid") != "User:admin" || !strings.Contains(str(attach[0], "policy.name"), "evidence") {
		t.Errorf("ACL event: %v", attach[0])
	}
	waitAudit(t, saslAddr, admin, 1, "erin's credential", func(e ocsf.Event) bool {
		return e.ClassUID() == 3001 && str(e, "user.name") == "erin"
	})

	// Each change of state is one event, with what changed.
	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := adm.CreateTopic(ctx, 2, 1, map[string]*string{"retention.ms": kadm.StringPtr("86400000")}, "case-42"); err != nil {
		t.Fatal(err)
	}
	if res, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "vigil.legal.hold", Value: kadm.StringPtr("true")}}, "case-42"); err != nil || res[0].Err != nil {
		t.Fatalf("legal hold: %v %v", err, res)
	}
	if res, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: kadm.StringPtr("1")}}, audit.Topic); err != nil || !errors.Is(res[0].Err, kerr.PolicyViolation) {
		t.Errorf("shortening the audit trail's retention: %v %v, want POLICY_VIOLATION", err, res)
	}
	offsets := kadm.Offsets{}
	offsets.Add(kadm.Offset{Topic: "case-42", Partition: 1, At: 0})
	if res, err := adm.CommitOffsets(ctx, "reset-me", offsets); err != nil || res.Error() != nil {
		t.Fatalf("offset reset: %v %v", err, res.Error())
	}
	user := "User:dave"
	if res, err := adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{{Entity: kadm.ClientQuotaEntity{{Type: "user", Name: &user}},
		Ops: []kadm.AlterClientQuotaOp{{Key: "consumer_byte_rate", Value: 1e6}}}}); err != nil || res[0].Err != nil {
		t.Fatalf("quota: %v %v", err, res)
	}
	for _, want := range []struct{ op, contains string }{
		{"CreateTopics", "topic case-42, 2 partitions: retention.ms=86400000"},
		{"IncrementalAlterConfigs", "legal hold set"},
		{"OffsetCommit", "group reset-me: offset of case-42 partition 1"},
		{"AlterClientQuotas", "consumer_byte_rate=1e+06"},
	} {
		got := waitAudit(t, saslAddr, admin, 1, want.op, func(e ocsf.Event) bool {
			return str(e, "api.operation") == want.op && str(e, "status") == "Success"
		})
		if msg := str(got[0], "message"); !strings.Contains(msg, want.contains) || str(got[0], "actor.user.uid") != "User:admin" {
			t.Errorf("%s event: %q by %s, want it to mention %q", want.op, msg, str(got[0], "actor.user.uid"), want.contains)
		}
	}

	// Nobody writes the trail or deletes it, not even a super user.
	wr, err := kgo.NewClient(kgo.SeedBrokers(saslAddr), admin, kgo.DefaultProduceTopic(audit.Topic), kgo.RequestRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	defer wr.Close()
	if err := wr.ProduceSync(ctx, &kgo.Record{Value: []byte("forged")}).FirstErr(); err == nil {
		t.Error("a super user wrote to the audit topic")
	}
	if res, err := adm.DeleteTopics(ctx, audit.Topic); err == nil && res[audit.Topic].Err == nil {
		t.Error("a super user deleted the audit topic")
	}

	// A flood of failed logins: summarised, and the broker keeps answering.
	var wg sync.WaitGroup
	floodStart := time.Now()
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 150; j++ {
				metadataErr(saslAddr, kgo.SASL(scram.Auth{User: "mallory", Pass: "guess"}.AsSha256Mechanism()))
			}
		}()
	}
	wg.Wait()
	flood := time.Since(floodStart)
	// At 50/s and a burst of 100, a flood faster than 10 s must have been
	// summarised (a loaded machine under -race can take longer: 600 SCRAM
	// failures cost 600 key derivations).
	mustSummarise := 600-100-int(50*flood.Seconds()) > 0
	if err := metadataErr(saslAddr, admin); err != nil {
		t.Fatalf("the broker after a flood of failed logins: %v", err)
	}
	// Each failed login is on record: one by one or counted in a summary.
	deadline := time.Now().Add(15 * time.Second)
	for {
		n, summaries := 0, 0
		for _, e := range auditEvents(t, saslAddr, admin) {
			switch {
			case e.ClassUID() == 3002 && str(e, "status") == "Failure" && str(e, "user.uid") == "User:mallory":
				n++
			case str(e, "api.operation") == "audit summary" && str(e, "actor.user.uid") == "User:mallory":
				c, _ := e.Get("count")
				f, _ := c.(float64)
				n += int(f)
				summaries++
			}
		}
		if n == 600 && (summaries > 0 || !mustSummarise) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 600 failed logins of mallory are on record, %d summary events (the flood took %v)", n, summaries, flood.Round(time.Millisecond))
		}
		time.Sleep(200 * time.Millisecond)
	}
}
