package broker

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DrainingConfig is the dynamic broker config that drains a broker of a
// cluster: set to true (IncrementalAlterConfigs on the BROKER resource
// named by its id, as `vigil cluster drain` does), the broker leads
// nothing and its partitions move to the others; deleted or false, it
// takes its share back. Any broker of the cluster accepts it for any
// broker id: the mark lives in the metadata store.
const DrainingConfig = "vigil.draining"

// drainChange is a validated IncrementalAlterConfigs of a BROKER
// resource: the broker and its new drain mark (nil: no change).
type drainChange struct {
	id       int32
	draining *bool
}

// parseBrokerDraining validates the DrainingConfig operations of an
// IncrementalAlterConfigs of a BROKER resource (splitDraining). Like
// Kafka's preprocessing of broker changes, it runs before authorization.
func (b *Broker) parseBrokerDraining(rr kmsg.IncrementalAlterConfigsRequestResource) (drainChange, int16, string) {
	if b.cluster == nil {
		return drainChange{}, kerr.InvalidRequest.Code, DrainingConfig + " needs a cluster: --metadata etcd://..."
	}
	id, err := strconv.ParseInt(rr.ResourceName, 10, 32)
	if err != nil {
		return drainChange{}, kerr.InvalidRequest.Code, fmt.Sprintf("broker resource name %q is not a broker id", rr.ResourceName)
	}
	ch := drainChange{id: int32(id)}
	for _, op := range rr.Configs {
		switch op.Op {
		case kmsg.IncrementalAlterConfigOpSet:
			if op.Value == nil {
				return ch, kerr.InvalidConfig.Code, "SET of " + DrainingConfig + " without a value"
			}
			v, err := strconv.ParseBool(*op.Value)
			if err != nil {
				return ch, kerr.InvalidConfig.Code, fmt.Sprintf("%s=%q: want true or false", DrainingConfig, *op.Value)
			}
			ch.draining = &v
		case kmsg.IncrementalAlterConfigOpDelete:
			f := false
			ch.draining = &f
		default:
			return ch, kerr.InvalidConfig.Code, fmt.Sprintf("operation %d is not supported on %s", op.Op, DrainingConfig)
		}
	}
	return ch, 0, ""
}

// alterBrokerDraining applies a validated drain change.
func (b *Broker) alterBrokerDraining(ch drainChange, validateOnly bool) (int16, string) {
	id, draining := ch.id, ch.draining
	if draining == nil || validateOnly {
		return 0, ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.cluster.SetDraining(ctx, int32(id), *draining); err != nil {
		b.log.Error("set broker draining", "broker", id, "draining", *draining, "err", err)
		return kerr.KafkaStorageError.Code, err.Error()
	}
	b.log.Info("broker drain mark changed", "broker", id, "draining", *draining)
	return 0, ""
}
