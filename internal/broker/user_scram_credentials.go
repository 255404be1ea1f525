package broker

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/sasl"
	"github.com/vigilhq/vigil/internal/security"
)

// scramMechanisms are KIP-554's mechanism codes.
func scramMechanism(code int8) (string, bool) {
	switch code {
	case 1:
		return sasl.ScramSHA256, true
	case 2:
		return sasl.ScramSHA512, true
	}
	return "", false
}

func scramCode(mechanism string) int8 {
	switch mechanism {
	case sasl.ScramSHA256:
		return 1
	case sasl.ScramSHA512:
		return 2
	}
	return 0
}

// handleDescribeUserScramCredentials lists users and their SCRAM
// mechanisms (never the keys), as KIP-554 describes; it needs Describe on
// the cluster.
func (b *Broker) handleDescribeUserScramCredentials(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	req := r.(*kmsg.DescribeUserSCRAMCredentialsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeUserSCRAMCredentialsResponse)
	if !c.allowed(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeCluster, clusterResource) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return func() kmsg.Response { return resp }
	}
	var users map[string][]security.UserCredential
	if b.security != nil {
		users = b.security.Users()
	}
	result := func(name string) kmsg.DescribeUserSCRAMCredentialsResponseResult {
		res := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
		res.User = name
		creds, ok := users[name]
		if !ok {
			res.ErrorCode = kerr.ResourceNotFound.Code
			res.ErrorMessage = ptr("Attempt to describe a user credential that does not exist: " + name)
			return res
		}
		for _, cr := range creds {
			info := kmsg.NewDescribeUserSCRAMCredentialsResponseResultCredentialInfo()
			info.Mechanism, info.Iterations = scramCode(cr.Mechanism), int32(cr.Iterations)
			res.CredentialInfos = append(res.CredentialInfos, info)
		}
		return res
	}
	if len(req.Users) == 0 {
		// null or empty: every user.
		names := make([]string, 0, len(users))
		for n := range users {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			resp.Results = append(resp.Results, result(n))
		}
		return func() kmsg.Response { return resp }
	}
	count := map[string]int{}
	for _, u := range req.Users {
		count[u.Name]++
	}
	done := map[string]bool{}
	for _, u := range req.Users {
		if done[u.Name] {
			continue
		}
		done[u.Name] = true
		if count[u.Name] > 1 {
			res := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
			res.User, res.ErrorCode = u.Name, kerr.DuplicateResource.Code
			res.ErrorMessage = ptr("Cannot describe SCRAM credentials for the same user twice in a single request: " + u.Name)
			resp.Results = append(resp.Results, res)
			continue
		}
		resp.Results = append(resp.Results, result(u.Name))
	}
	return func() kmsg.Response { return resp }
}

// handleAlterUserScramCredentials adds, replaces and deletes SCRAM
// credentials (KIP-554: the client sends the salted password, never the
// password). It needs Alter on the cluster. Each user gets one result;
// the valid changes are stored in one transaction.
func (b *Broker) handleAlterUserScramCredentials(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	req := r.(*kmsg.AlterUserSCRAMCredentialsRequest)
	resp := req.ResponseKind().(*kmsg.AlterUserSCRAMCredentialsResponse)
	var order []string
	errs := map[string]*kerr.Error{}
	msgs := map[string]string{}
	fail := func(user string, e *kerr.Error, msg string) {
		if _, ok := errs[user]; !ok {
			errs[user], msgs[user] = e, msg
		}
	}
	seen := map[string]bool{}
	note := func(user string) {
		if !seen[user] {
			seen[user] = true
			order = append(order, user)
		}
	}
	for _, d := range req.Deletions {
		note(d.Name)
	}
	for _, u := range req.Upsertions {
		note(u.Name)
	}
	finish := func() func() kmsg.Response {
		for _, user := range order {
			res := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
			res.User = user
			if e := errs[user]; e != nil {
				res.ErrorCode = e.Code
				if m := msgs[user]; m != "" {
					res.ErrorMessage = ptr(m)
				}
			}
			resp.Results = append(resp.Results, res)
		}
		return func() kmsg.Response { return resp }
	}
	if !c.allowed(kmsg.ACLOperationAlter, kmsg.ACLResourceTypeCluster, clusterResource) {
		for _, u := range order {
			fail(u, kerr.ClusterAuthorizationFailed, "")
		}
		return finish()
	}
	if b.security == nil {
		for _, u := range order {
			fail(u, kerr.UnsupportedVersion, "this broker stores no SCRAM credentials")
		}
		return finish()
	}
	// Kafka refuses a user named twice for one mechanism in one request.
	perMech := map[[2]string]int{}
	for _, d := range req.Deletions {
		m, _ := scramMechanism(d.Mechanism)
		perMech[[2]string{d.Name, m}]++
	}
	for _, u := range req.Upsertions {
		m, _ := scramMechanism(u.Mechanism)
		perMech[[2]string{u.Name, m}]++
	}
	var changes []security.ScramChange
	for _, d := range req.Deletions {
		m, ok := scramMechanism(d.Mechanism)
		switch {
		case d.Name == "":
			fail(d.Name, kerr.UnacceptableCredential, "Username must not be empty")
		case !ok:
			fail(d.Name, kerr.UnsupportedSaslMechanism, fmt.Sprintf("Unknown SCRAM mechanism %d", d.Mechanism))
		case perMech[[2]string{d.Name, m}] > 1:
			fail(d.Name, kerr.DuplicateResource, "A user credential cannot be altered twice in the same request")
		default:
			changes = append(changes, security.ScramChange{User: d.Name, Mechanism: m})
		}
	}
	for _, u := range req.Upsertions {
		m, ok := scramMechanism(u.Mechanism)
		switch {
		case u.Name == "":
			fail(u.Name, kerr.UnacceptableCredential, "Username must not be empty")
		case !ok:
			fail(u.Name, kerr.UnsupportedSaslMechanism, fmt.Sprintf("Unknown SCRAM mechanism %d", u.Mechanism))
		case perMech[[2]string{u.Name, m}] > 1:
			fail(u.Name, kerr.DuplicateResource, "A user credential cannot be altered twice in the same request")
		default:
			cred, err := sasl.ScramCredentialFromSalted(m, u.Salt, u.SaltedPassword, int(u.Iterations))
			if err != nil {
				fail(u.Name, kerr.UnacceptableCredential, err.Error())
				continue
			}
			changes = append(changes, security.ScramChange{User: u.Name, Mechanism: m, Credential: &cred})
		}
	}
	// A user with any bad alteration has none of them applied.
	valid := changes[:0]
	for _, ch := range changes {
		if errs[ch.User] == nil {
			valid = append(valid, ch)
		}
	}
	who := c.auth.principal
	return func() kmsg.Response {
		// Deletions of credentials that do not exist fail their user alone.
		users := b.security.Users()
		apply := valid[:0:0]
		for _, ch := range valid {
			if ch.Credential == nil && !hasMechanism(users[ch.User], ch.Mechanism) {
				fail(ch.User, kerr.ResourceNotFound, "Attempt to delete a user credential that does not exist")
				continue
			}
			apply = append(apply, ch)
		}
		kept := apply[:0:0]
		for _, ch := range apply {
			if errs[ch.User] == nil {
				kept = append(kept, ch)
			}
		}
		if len(kept) > 0 {
			ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
			err := b.security.AlterScram(ctx, kept)
			cancel()
			for _, ch := range kept {
				switch {
				case errors.Is(err, security.ErrUnknownCredential):
					fail(ch.User, kerr.ResourceNotFound, err.Error())
				case err != nil:
					b.log.Error("alter SCRAM credentials", "err", err)
					fail(ch.User, kerr.UnknownServerError, "")
				default:
					what := "upsert"
					if ch.Credential == nil {
						what = "delete"
					}
					b.admin(who, "AlterUserScramCredentials", fmt.Sprintf("%s %s credential of user %s", what, ch.Mechanism, ch.User))
				}
			}
		}
		resp.Results = nil
		finish()
		return resp
	}
}

func hasMechanism(creds []security.UserCredential, mechanism string) bool {
	for _, c := range creds {
		if c.Mechanism == mechanism {
			return true
		}
	}
	return false
}
