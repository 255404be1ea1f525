package cost

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// WriteText prints r for a terminal: the workload as the model reads it,
// then each system's terms (monthly dollars, quantity at unit price, and
// on the next line the formula with its figures) and total, then the difference.
func WriteText(w io.Writer, r Report) error {
	in, d := r.Inputs.Workload, r.Derived
	fmt.Fprintf(w, "Workload: %s GB/day ingested, %s GB/day stored (compression ratio %s), kept %s days (%s GB);\n",
		num(in.IngestGBPerDay), num(d.StoredGBPerDay), num(in.CompressionRatio), num(in.RetentionDays), num(d.RetainedGB))
	fmt.Fprintf(w, "replayed %s of it a month (%s GB); %d consumer groups live; %d zones; %d partitions.\n",
		num(in.ReplayFraction), num(d.ReplayedGBMonth), in.Fanout, in.Zones, in.Partitions)
	fmt.Fprintf(w, "A month is %d h (%s days: %s GB written, %s MiB/s). USD; prices and formulas: docs/cost.md.\n",
		HoursPerMonth, num(DaysPerMonth), num(d.WrittenGBMonth), num(d.WriteMiBPerSec))
	for _, s := range []System{r.Vigil, r.Kafka} {
		fmt.Fprintf(w, "\n%s: %d brokers = %s\n", s.Name, s.Brokers, s.BrokersFormula)
		for _, t := range s.Terms {
			fmt.Fprintf(w, "  %-24s %12s  %s %s x %s/%s\n      = %s\n",
				t.Name, money(t.Monthly), grouped(t.Quantity), t.Unit, priceText(t.Price), t.Per, t.Formula)
		}
		fmt.Fprintf(w, "  %-24s %12s\n", "total", money(s.Total))
	}
	diff := r.Vigil.Total - r.Kafka.Total
	sign := "+"
	if diff < 0 {
		sign = "-"
	}
	_, err := fmt.Fprintf(w, "\nVigil - Kafka: %s%s a month (Vigil is %s of Kafka's cost)\n",
		sign, money(abs(diff)), ratio(r.Vigil.Total, r.Kafka.Total))
	if err != nil {
		return fmt.Errorf("write the cost report: %w", err)
	}
	return nil
}

// money prints dollars with cents and thousands separators.
func money(v float64) string {
	cents := strconv.FormatFloat(v, 'f', 2, 64)
	whole, frac, _ := strings.Cut(cents, ".")
	return "$" + group(whole) + "." + frac
}

// grouped prints a quantity: whole with thousands separators from 1000
// up, as num does below.
func grouped(v float64) string {
	if abs(v) < 1000 {
		return num(v)
	}
	return group(strconv.FormatFloat(v, 'f', 0, 64))
}

// group puts commas between thousands of a string of digits.
func group(digits string) string {
	neg := strings.HasPrefix(digits, "-")
	digits = strings.TrimPrefix(digits, "-")
	var b strings.Builder
	for i, c := range digits {
		if i > 0 && (len(digits)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func priceText(p float64) string { return "$" + strconv.FormatFloat(p, 'f', -1, 64) }

func ratio(a, b float64) string {
	if b == 0 {
		return "n/a"
	}
	return strconv.FormatFloat(100*a/b, 'f', 0, 64) + "%"
}

func abs(v float64) float64 {
	if v < 0 {
		return -v
	}
	return v
}
