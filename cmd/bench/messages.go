package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/spanferry/spanferry/internal/benchdata"
)

// templateResult is the result the Go benchmarks measure too: a realistic
// 8-step result of about 1.5 KB.
var templateResult = benchdata.Result8Steps

// The template's values that each message replaces.
const (
	templateID    = `"run_bench_0001"`
	templateStart = `"2026-11-24T10:00:00.000Z"`
	templateEnd   = `"2026-11-24T10:00:02.350Z"`
)

// timeLayout has a fixed width, so that every message has the same size.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

// runDuration is the template's ended_at − started_at.
const runDuration = 2350 * time.Millisecond

// body renders results: the template with steps steps, a unique id, and
// ended_at set to the publish time (so a receiver can tell publish→export
// from the root span's end time), started_at 2.35s before.
type body struct {
	literal [][]byte // literal[i] comes before field[i]; the last one ends the message
	field   []int    // fieldID, fieldStart or fieldEnd
	spans   int      // spans per result: the root and one per step
}

const (
	fieldID = iota
	fieldStart
	fieldEnd
)

func newBody(steps int) (*body, error) {
	tmpl := templateResult
	if steps != 8 {
		var err error
		if tmpl, err = withSteps(templateResult, steps); err != nil {
			return nil, err
		}
	}
	tmpl = bytes.TrimSpace(tmpl)
	b := &body{spans: steps + 1}
	markers := []string{fieldID: templateID, fieldStart: templateStart, fieldEnd: templateEnd}
	for {
		next, at := -1, len(tmpl)
		for f, m := range markers {
			if i := bytes.Index(tmpl, []byte(m)); i >= 0 && i < at {
				next, at = f, i
			}
		}
		if next < 0 {
			break
		}
		b.literal = append(b.literal, tmpl[:at])
		b.field = append(b.field, next)
		tmpl = tmpl[at+len(markers[next]):]
	}
	b.literal = append(b.literal, tmpl)
	if len(b.field) != len(markers) {
		return nil, fmt.Errorf("bench: the template must hold its id, started_at and ended_at once each")
	}
	return b, nil
}

// render appends the result with id and ended_at end to dst.
func (b *body) render(dst []byte, id string, end time.Time) []byte {
	end = end.UTC()
	for i, f := range b.field {
		dst = append(dst, b.literal[i]...)
		switch f {
		case fieldID:
			dst = strconv.AppendQuote(dst, id)
		case fieldStart:
			dst = append(append(append(dst, '"'), end.Add(-runDuration).Format(timeLayout)...), '"')
		case fieldEnd:
			dst = append(append(append(dst, '"'), end.Format(timeLayout)...), '"')
		}
	}
	return append(dst, b.literal[len(b.literal)-1]...)
}

// withSteps rebuilds the template with n top-level steps cycling through
// the template's eight steps (flattened, children removed), ids s1…sn.
func withSteps(tmpl []byte, n int) ([]byte, error) {
	var doc map[string]any
	if err := json.Unmarshal(tmpl, &doc); err != nil {
		return nil, err
	}
	var flat []map[string]any
	var walk func([]any)
	walk = func(steps []any) {
		for _, s := range steps {
			step := s.(map[string]any)
			children, _ := step["steps"].([]any)
			delete(step, "steps")
			flat = append(flat, step)
			walk(children)
		}
	}
	walk(doc["steps"].([]any))
	steps := make([]any, n)
	for i := range steps {
		step := map[string]any{}
		for k, v := range flat[i%len(flat)] {
			step[k] = v
		}
		step["id"] = "s" + strconv.Itoa(i+1)
		steps[i] = step
	}
	doc["steps"] = steps
	// Key order changes (encoding/json sorts them); the content does not.
	return json.Marshal(doc)
}
