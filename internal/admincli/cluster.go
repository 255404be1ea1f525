package admincli

import (
	"context"
	"flag"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

const clusterUsage = `Usage:
  vigil cluster status [flags]
  vigil cluster drain BROKER-ID [--undo] [--no-wait] [flags]

status lists the live brokers with their zone, whether they drain, and how
many partitions they lead and groups they coordinate. drain moves every
partition and the group coordinator off a broker before a planned shutdown
(clients see only retriable errors) and waits until it leads nothing;
--undo gives the broker its share back.

` + commonUsage

// drainingConfig is the broker config `vigil serve` treats as the drain
// mark (broker.DrainingConfig; not imported: this package speaks only the
// Kafka protocol).
const drainingConfig = "vigil.draining"

func clusterCommands() map[string]subcommand {
	return map[string]subcommand{
		"status": {args: "", setup: func(fs *flag.FlagSet) func(context.Context, *invocation) error {
			return func(ctx context.Context, inv *invocation) error {
				if len(inv.pos) > 0 {
					return usagef("unexpected argument %q", inv.pos[0])
				}
				return inv.admin(func(adm *kadm.Client) error {
					st, err := clusterStatus(ctx, adm)
					if err != nil {
						return err
					}
					return printStatus(inv.out, st)
				})
			}
		}},
		"drain": {args: "BROKER-ID [--undo] [--no-wait]", setup: func(fs *flag.FlagSet) func(context.Context, *invocation) error {
			undo := fs.Bool("undo", false, "stop draining: the broker takes its share of partitions back")
			noWait := fs.Bool("no-wait", false, "return once the drain mark is set, without waiting for leadership to move")
			return func(ctx context.Context, inv *invocation) error {
				if len(inv.pos) != 1 {
					return usagef("want exactly one BROKER-ID")
				}
				id, err := strconv.ParseInt(inv.pos[0], 10, 32)
				if err != nil {
					return usagef("BROKER-ID %q is not a number", inv.pos[0])
				}
				return inv.admin(func(adm *kadm.Client) error {
					return drain(ctx, adm, inv.out, int32(id), !*undo, !*noWait)
				})
			}
		}},
	}
}

// brokerStatus is one row of `vigil cluster status`.
type brokerStatus struct {
	ID         int32  `json:"id"`
	Addr       string `json:"addr"`
	Zone       string `json:"zone"`
	Draining   bool   `json:"draining"`
	Partitions int    `json:"partitions_led"`
	Groups     int    `json:"groups_coordinated"`
}

type status struct {
	Brokers    []brokerStatus `json:"brokers"`
	Leaderless int            `json:"partitions_without_leader"`
}

func clusterStatus(ctx context.Context, adm *kadm.Client) (status, error) {
	md, err := adm.Metadata(ctx)
	if err != nil {
		return status{}, fmt.Errorf("metadata: %w", err)
	}
	var st status
	rows := map[int32]*brokerStatus{}
	var ids []int32
	for _, b := range md.Brokers {
		r := &brokerStatus{ID: b.NodeID, Addr: fmt.Sprintf("%s:%d", b.Host, b.Port)}
		if b.Rack != nil {
			r.Zone = *b.Rack
		}
		rows[b.NodeID] = r
		ids = append(ids, b.NodeID)
	}
	for _, t := range md.Topics {
		for _, p := range t.Partitions {
			if r := rows[p.Leader]; r != nil && p.Err == nil {
				r.Partitions++
			} else {
				st.Leaderless++
			}
		}
	}
	groups, err := adm.ListGroups(ctx)
	if err != nil {
		return status{}, fmt.Errorf("list groups: %w", err)
	}
	for _, g := range groups {
		if r := rows[g.Coordinator]; r != nil {
			r.Groups++
		}
	}
	if len(ids) > 0 {
		// Each broker reports its own drain mark; a broker that does not
		// answer simply shows as not draining.
		cfgs, _ := adm.DescribeBrokerConfigs(ctx, ids...)
		for _, rc := range cfgs {
			id, err := strconv.ParseInt(rc.Name, 10, 32)
			if err != nil || rc.Err != nil || rows[int32(id)] == nil {
				continue
			}
			for _, c := range rc.Configs {
				if c.Key == drainingConfig && c.Value != nil {
					rows[int32(id)].Draining, _ = strconv.ParseBool(*c.Value)
				}
			}
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		st.Brokers = append(st.Brokers, *rows[id])
	}
	return st, nil
}

func printStatus(out *printer, st status) error {
	if out.json {
		return out.encode(st)
	}
	var rows [][]string
	for _, b := range st.Brokers {
		rows = append(rows, []string{itoa(b.ID), b.Addr, b.Zone, strconv.FormatBool(b.Draining), itoa(b.Partitions), itoa(b.Groups)})
	}
	if err := out.table([]string{"BROKER", "ADDRESS", "ZONE", "DRAINING", "PARTITIONS", "GROUPS"}, rows); err != nil {
		return err
	}
	if st.Leaderless > 0 {
		return out.line("%d partitions have no leader right now (moving)", st.Leaderless)
	}
	return nil
}

// drain sets or clears a broker's drain mark and, with wait, reports
// progress until the broker leads no partition and coordinates no group
// (or, undoing, until it leads some again).
func drain(ctx context.Context, adm *kadm.Client, out *printer, id int32, on, wait bool) error {
	op := kadm.AlterConfig{Op: kadm.SetConfig, Name: drainingConfig, Value: ptr(strconv.FormatBool(on))}
	resps, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{op}, id)
	if err != nil {
		return fmt.Errorf("set %s on broker %d: %w", drainingConfig, id, err)
	}
	for _, r := range resps {
		if r.Err != nil {
			return fmt.Errorf("set %s on broker %d: %s", drainingConfig, id, errText(r.Err, r.ErrMessage))
		}
	}
	verb := "draining"
	if !on {
		verb = "no longer draining"
	}
	if !wait {
		return out.line("broker %d is %s", id, verb)
	}
	last := ""
	// Every look must be fresh: kadm answers Metadata from the client's
	// cache while it is younger than MetadataMinAge (5 s), so polling it
	// saw the partitions where they were up to 5 s earlier and printed
	// "drained" that much after they had moved. Asking for the authorized
	// operations is kadm's only way past that cache: a direct request.
	fresh := kadm.WithAuthorizedOps(ctx)
	for {
		st, err := clusterStatus(fresh, adm)
		if err != nil {
			return err
		}
		var me *brokerStatus
		for i := range st.Brokers {
			if st.Brokers[i].ID == id {
				me = &st.Brokers[i]
			}
		}
		switch {
		case me == nil && on:
			return out.line("broker %d is not live (nothing to move)", id)
		case me == nil:
			return failedf("broker %d is not live", id)
		case on && me.Partitions == 0 && me.Groups == 0 && st.Leaderless == 0:
			return out.line("broker %d is drained: it leads no partition and coordinates no group; it can be stopped", id)
		case !on && me.Partitions > 0 && st.Leaderless == 0:
			return out.line("broker %d is %s and leads %d partitions", id, verb, me.Partitions)
		}
		if msg := fmt.Sprintf("broker %d %s: leads %d partitions, coordinates %d groups, %d partitions moving", id, verb, me.Partitions, me.Groups, st.Leaderless); msg != last && !out.json {
			if err := out.line("%s", msg); err != nil {
				return err
			}
			last = msg
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("broker %d still leads %d partitions: %w", id, me.Partitions, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}
