package table

import (
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/iceberg-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/ocsf/ocsfschema"
)

// parts builds a commit's rows as one Arrow record batch per partition of
// the table (event day and class), in the order the partitions first
// appear. iceberg-go splits a batch holding several partitions with
// Arrow's Take, copying every column (raw above all) into a batch per
// partition; a batch that is one partition already it writes as it is.
// Within a partition rows keep the order of the topic's records, as the
// split keeps them.
type parts struct {
	*scanner
	as *arrow.Schema
	// always are the columns every batch has (the base and promoted
	// ones); classCols, per class_uid, those of the class's attributes.
	always    []bool
	classCols map[int32][]bool
	ocsf      *ocsfschema.Schema
	by        map[partKey]*rows
	// order lists the partitions of the rows being built, first seen first.
	order []partKey
	n     int
}

// partKey is a row's partition: the day of its time column, and its
// class_uid (none where the column is null). Only the grouping depends
// on it: iceberg-go computes each row's partition itself, and splits a
// batch that holds more than one.
type partKey struct {
	day      int64
	class    int32
	hasClass bool
}

// newParts prepares the batches of a commit for the table's schema (see
// newRows for cols).
func newParts(sc *iceberg.Schema, cols []column, ocsf *ocsfschema.Schema) (*parts, error) {
	as, err := arrowSchema(sc)
	if err != nil {
		return nil, err
	}
	p := &parts{scanner: newScanner(as, cols), as: as, ocsf: ocsf, classCols: map[int32][]bool{}, by: map[partKey]*rows{}}
	p.always = make([]bool, len(p.cols))
	for i, f := range as.Fields() {
		p.always[i] = slices.ContainsFunc(cols, func(c column) bool { return c.name == f.Name })
	}
	return p, nil
}

const microsPerDay = 86_400_000_000

// append adds the record scan read last to its partition's batch.
func (p *parts) append(rec *kgo.Record) {
	k := partKey{day: floorDiv(p.timeOf(rec), microsPerDay)}
	if c, ok := p.classOf(); ok {
		k.class, k.hasClass = int32(c), true
	}
	r := p.by[k]
	if r == nil {
		r = p.spare(k)
		p.by[k] = r
	}
	if r.n == 0 {
		p.order = append(p.order, k)
	}
	r.append(rec)
	p.n++
}

// spare returns a builder for a partition new to this one: that of a
// partition of the same class without rows in this commit so far (a
// day's when the next day's rows come), sized for as many rows as it
// had in the last commit; else a new one, whose builders grow as its
// rows come.
func (p *parts) spare(k partKey) *rows {
	for ok, r := range p.by {
		if r.n == 0 && ok.class == k.class && ok.hasClass == k.hasClass {
			delete(p.by, ok)
			return r
		}
	}
	return newRowsOf(p.as, p.scanner, 0)
}

// records returns the batches built so far, one per partition, and starts
// the next commit's. The builders of partitions this commit had no row
// for (nor took over) are released: days pass, and a builder sized for a
// day's rows would hold its memory for nothing.
func (p *parts) records() []arrow.RecordBatch {
	out := make([]arrow.RecordBatch, 0, len(p.order))
	for _, k := range p.order {
		r := p.by[k]
		keep := slices.Clone(p.always)
		var class []bool
		if k.hasClass {
			class = p.columnsOf(k.class)
		}
		for i := range keep {
			keep[i] = keep[i] || class != nil && class[i] || r.filled(i)
		}
		out = append(out, r.recordOf(keep))
	}
	for k, r := range p.by {
		if !slices.Contains(p.order, k) {
			r.release()
			delete(p.by, k)
		}
	}
	p.order, p.n = p.order[:0], 0
	return out
}

// columnsOf are the columns of a class's attributes, nil for a class
// the OCSF schema does not know.
func (p *parts) columnsOf(class int32) []bool {
	if c, ok := p.classCols[class]; ok {
		return c
	}
	var c []bool
	if fs := classFields(p.ocsf, int(class)); fs != nil {
		c = make([]bool, len(p.cols))
		for i, col := range p.cols {
			c[i] = slices.ContainsFunc(fs, func(f iceberg.NestedField) bool { return f.Name == col.name })
		}
	}
	p.classCols[class] = c
	return c
}

func (p *parts) release() {
	for _, r := range p.by {
		r.release()
	}
	clear(p.by)
}

// floorDiv is a / b rounded down, as Iceberg's day transform divides
// (times before 1970 fall on negative days).
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
