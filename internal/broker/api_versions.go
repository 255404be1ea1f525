package broker

import (
	"regexp"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// KIP-511's rule for client software names and versions.
var softwareRe = regexp.MustCompile(`^[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?$`)

func (b *Broker) apiKeys() []kmsg.ApiVersionsResponseApiKey {
	keys := make([]kmsg.ApiVersionsResponseApiKey, 0, len(b.apis))
	for k, a := range b.apis {
		keys = append(keys, kmsg.ApiVersionsResponseApiKey{ApiKey: k, MinVersion: a.min, MaxVersion: a.max})
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].ApiKey < keys[j].ApiKey })
	return keys
}

// transactionVersion is the transaction.version feature every Vigil
// broker supports and finalizes: 2, KIP-890 part 2 (an epoch bump at the
// end of every transaction, partitions added by Produce v12 and
// TxnOffsetCommit v5 instead of AddPartitionsToTxn and AddOffsetsToTxn).
// Clients use it only when it is finalized; older clients keep version 1
// with KIP-890 part 1's verification. Every broker of a cluster runs the
// same code, so the feature never changes under a client (epoch 1).
const transactionVersion = 2

func (b *Broker) handleApiVersions(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	req := r.(*kmsg.ApiVersionsRequest)
	resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
	resp.ApiKeys = b.apiKeys()
	if h.version >= 3 {
		resp.SupportedFeatures = []kmsg.ApiVersionsResponseSupportedFeature{{Name: "transaction.version", MinVersion: 0, MaxVersion: transactionVersion}}
		resp.FinalizedFeaturesEpoch = 1
		resp.FinalizedFeatures = []kmsg.ApiVersionsResponseFinalizedFeature{{Name: "transaction.version", MinVersionLevel: transactionVersion, MaxVersionLevel: transactionVersion}}
		if !softwareRe.MatchString(req.ClientSoftwareName) || !softwareRe.MatchString(req.ClientSoftwareVersion) {
			resp.ErrorCode = kerr.InvalidRequest.Code
		}
		c.softwareName, c.softwareVersion = req.ClientSoftwareName, req.ClientSoftwareVersion
		c.log.Debug("client software", "name", req.ClientSoftwareName, "version", req.ClientSoftwareVersion, "client_id", h.clientID)
	}
	return func() kmsg.Response { return resp }
}

// unsupportedApiVersions is the answer to an ApiVersions request of a
// version newer than ours: UNSUPPORTED_VERSION with our ranges, encoded
// as v0 so any client can read it and retry.
func (b *Broker) unsupportedApiVersions() kmsg.Response {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	resp.ApiKeys = b.apiKeys()
	return resp
}
