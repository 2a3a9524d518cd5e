package main

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Stat summarises a sample.
type Stat struct {
	N      int     `json:"n"`
	Min    float64 `json:"min"`
	Median float64 `json:"median"`
	P90    float64 `json:"p90"`
	Max    float64 `json:"max"`
}

// Row is one line of the result table. A row with Baseline set is compared with the
// row of that name in the same section: Ratio = Median / baseline Median.
type Row struct {
	Section  string   `json:"section"`
	Name     string   `json:"name"`
	Unit     string   `json:"unit"`
	Stat              // of the sample, in Unit
	Baseline string   `json:"baseline,omitempty"`
	Ratio    *float64 `json:"ratio,omitempty"`
	Note     string   `json:"note,omitempty"`
}

// summarize returns the order statistics of xs (nearest-rank percentiles).
func summarize(xs []float64) Stat {
	if len(xs) == 0 {
		return Stat{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	rank := func(p float64) float64 {
		i := int(p*float64(len(s))+0.999999) - 1
		return s[max(0, min(len(s)-1, i))]
	}
	return Stat{N: len(s), Min: s[0], Median: rank(0.5), P90: rank(0.9), Max: s[len(s)-1]}
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

func msAll(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = ms(d)
	}
	return out
}

// fillRatios sets Ratio on every row that names a baseline present in its section.
func fillRatios(rows []Row) {
	for i := range rows {
		if rows[i].Baseline == "" {
			continue
		}
		for _, b := range rows {
			if b.Section == rows[i].Section && b.Name == rows[i].Baseline && b.Median != 0 && rows[i].N > 0 {
				r := rows[i].Median / b.Median
				rows[i].Ratio = &r
			}
		}
	}
}

func num(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 1000:
		return fmt.Sprintf("%.0f", v)
	case v >= 100:
		return fmt.Sprintf("%.1f", v)
	case v >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

// table renders rows as a Markdown table (readable in a terminal too).
func table(rows []Row) string {
	var b strings.Builder
	b.WriteString("| section | measurement | n | min | median | p90 | max | unit | ratio (median) |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---|---|\n")
	for _, r := range rows {
		ratio := ""
		if r.Ratio != nil {
			ratio = fmt.Sprintf("%.2fx %s", *r.Ratio, r.Baseline)
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %s | %s | %s | %s | %s | %s |\n",
			r.Section, r.Name, r.N, num(r.Min), num(r.Median), num(r.P90), num(r.Max), r.Unit, ratio)
	}
	return b.String()
}
