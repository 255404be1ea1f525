package partition

import (
	"slices"
	"sort"

	"github.com/vigilhq/vigil/internal/meta"
)

// AssignEpoch returns the leader-epoch history hist (oldest first) with
// epoch beginning at start, the way Kafka's leader-epoch cache assigns a
// new leader's epoch: entries at or after the new one (a later epoch, or
// an epoch that began at start and so wrote nothing) are dropped first;
// then the entries wholly before logStart, keeping the last of them with
// its start moved up to logStart. hist is not modified.
func AssignEpoch(hist []meta.EpochStart, epoch int32, start, logStart int64) []meta.EpochStart {
	out := slices.Clone(hist)
	for len(out) > 0 {
		last := out[len(out)-1]
		if last.Epoch < epoch && last.Offset < start {
			break
		}
		out = out[:len(out)-1]
	}
	return trimEpochs(append(out, meta.EpochStart{Epoch: epoch, Offset: start}), logStart)
}

// trimEpochs drops the epochs that ended at or before logStart and moves
// the start of the first one left up to logStart, as Kafka's cache does
// when the log start moves. It returns hist itself when nothing changes.
func trimEpochs(hist []meta.EpochStart, logStart int64) []meta.EpochStart {
	i := 0
	for i+1 < len(hist) && hist[i+1].Offset <= logStart {
		i++
	}
	if i == 0 && (len(hist) == 0 || hist[0].Offset >= logStart) {
		return hist
	}
	out := slices.Clone(hist[i:])
	out[0].Offset = max(out[0].Offset, logStart)
	return out
}

// EpochEnd answers OffsetForLeaderEpoch: the epoch and end offset for a
// client that read records of epoch, as Kafka's leader-epoch cache
// answers it. The current epoch ends at the high watermark (all a
// consumer can have read). An earlier one ends where the first later
// epoch of the history began, and the epoch answered is the latest one
// of the history at or before the one asked for; an epoch older than the
// whole history (trimmed by the log start, or from before the history was
// kept) is answered with itself and the first history entry's start. An
// undefined epoch (-1) or one after the current is unknown: (-1, -1).
//
// The history holds each epoch's start from the takeover that began it
// (SetLeader). Vigil never truncates a log, so a client's position is
// never past the answer, whatever the history holds.
func (l *Log) EpochEnd(epoch int32) (int32, int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case epoch < 0 || epoch > l.epoch:
		return -1, -1
	case epoch == l.epoch:
		return epoch, l.hw
	}
	hist := trimEpochs(l.epochs, l.logStart)
	i := sort.Search(len(hist), func(i int) bool { return hist[i].Epoch > epoch })
	switch {
	case i == len(hist):
		return -1, -1 // no later epoch known; SetLeader keeps the current one last
	case i == 0:
		return epoch, hist[0].Offset
	default:
		return hist[i-1].Epoch, hist[i].Offset
	}
}
