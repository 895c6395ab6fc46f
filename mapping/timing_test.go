package mapping_test

import (
	"testing"
	"time"

	"github.com/spanferry/spanferry/mapping"
)

// TestTimingRules covers every timing rule of CONTRACT §1. Offsets are from
// t0 (10:00:00) unless the case anchors on the stored time.
func TestTimingRules(t *testing.T) {
	type want struct{ start, end time.Duration }
	cases := []struct {
		name   string
		msg    string
		anchor time.Time
		want   map[string]want
	}{{
		name: "root started and ended; steps chain by latency",
		msg: `{"id":"r","name":"root","started_at":"2026-11-24T10:00:00Z","ended_at":"2026-11-24T10:00:05Z",
			"steps":[{"name":"a","latency_ms":100},{"name":"b","latency_ms":250.5},{"name":"c"}]}`,
		want: map[string]want{"root": {0, 5 * time.Second}, "a": {0, ms(100)}, "b": {ms(100), ms(350.5)}, "c": {ms(350.5), ms(350.5)}},
	}, {
		name: "root end is start + latency",
		msg:  `{"id":"r","name":"root","started_at":"2026-11-24T10:00:00Z","latency_ms":2350}`,
		want: map[string]want{"root": {0, ms(2350)}},
	}, {
		name: "root end is its last child's end",
		msg:  `{"id":"r","name":"root","started_at":"2026-11-24T10:00:00Z","steps":[{"name":"a","latency_ms":40},{"name":"b","latency_ms":60}]}`,
		want: map[string]want{"root": {0, ms(100)}, "b": {ms(40), ms(100)}},
	}, {
		name: "root end is its start without children",
		msg:  `{"id":"r","name":"root","started_at":"2026-11-24T10:00:00Z"}`,
		want: map[string]want{"root": {0, 0}},
	}, {
		name: "root start is end − latency",
		msg:  `{"id":"r","name":"root","ended_at":"2026-11-24T10:00:02Z","latency_ms":500,"steps":[{"name":"a","latency_ms":100}]}`,
		want: map[string]want{"root": {ms(1500), 2 * time.Second}, "a": {ms(1500), ms(1600)}},
	}, {
		name: "root start is end − the top-level steps' durations",
		msg: `{"id":"r","name":"root","ended_at":"2026-11-24T10:00:02Z","steps":[
			{"name":"a","latency_ms":300},
			{"name":"b","started_at":"2026-11-24T09:00:00Z","ended_at":"2026-11-24T09:00:00.2Z"},
			{"name":"c","steps":[{"name":"c1","latency_ms":150},{"name":"c2","latency_ms":50}]}]}`,
		// 300 + 200 + (150+50) = 700ms before the end.
		want: map[string]want{"root": {ms(1300), 2 * time.Second}, "a": {ms(1300), ms(1600)},
			"c": {-time.Hour + ms(200), -time.Hour + ms(400)}},
	}, {
		name:   "root without start or end ends when the message was stored",
		msg:    `{"id":"r","name":"root","latency_ms":1000,"steps":[{"name":"a","latency_ms":10}]}`,
		anchor: stored,
		want:   map[string]want{"root": {-time.Second, 0}, "a": {-time.Second, -time.Second + ms(10)}},
	}, {
		name:   "root without any time: stored end, start from the steps",
		msg:    `{"id":"r","name":"root","steps":[{"name":"a","latency_ms":10},{"name":"b","latency_ms":30}]}`,
		anchor: stored,
		want:   map[string]want{"root": {-ms(40), 0}, "a": {-ms(40), -ms(30)}, "b": {-ms(30), 0}},
	}, {
		name: "first child starts with its parent; later ones after their previous sibling",
		msg: `{"id":"r","name":"root","started_at":"2026-11-24T10:00:00Z","steps":[
			{"name":"a","latency_ms":100},
			{"name":"b","steps":[{"name":"b1","latency_ms":20},{"name":"b2","latency_ms":30}]},
			{"name":"c","latency_ms":5}]}`,
		want: map[string]want{"b": {ms(100), ms(150)}, "b1": {ms(100), ms(120)}, "b2": {ms(120), ms(150)}, "c": {ms(150), ms(155)}, "root": {0, ms(155)}},
	}, {
		name: "explicit step times win and move the cursor",
		msg: `{"id":"r","name":"root","started_at":"2026-11-24T10:00:00Z","steps":[
			{"name":"a","started_at":"2026-11-24T10:00:01Z","ended_at":"2026-11-24T10:00:01.5Z"},
			{"name":"b","latency_ms":100}]}`,
		want: map[string]want{"a": {time.Second, ms(1500)}, "b": {ms(1500), ms(1600)}},
	}, {
		name: "a step with ended_at and latency but no start ends at ended_at",
		msg: `{"id":"r","name":"root","started_at":"2026-11-24T10:00:00Z","steps":[
			{"name":"a","ended_at":"2026-11-24T10:00:03Z","latency_ms":1000}]}`,
		want: map[string]want{"a": {2 * time.Second, 3 * time.Second}},
	}, {
		name: "an explicit end before the derived start moves the start",
		msg: `{"id":"r","name":"root","started_at":"2026-11-24T10:00:00Z","steps":[
			{"name":"a","latency_ms":5000},{"name":"b","ended_at":"2026-11-24T10:00:01Z"}]}`,
		want: map[string]want{"b": {time.Second, time.Second}},
	}, {
		name: "fractional milliseconds and time zones",
		msg:  `{"id":"r","name":"root","started_at":"2026-11-24T11:00:00.000250+01:00","latency_ms":0.75}`,
		want: map[string]want{"root": {250 * time.Microsecond, time.Millisecond}},
	}}
	m := newMapper(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spans, _ := mapJSON(t, m, tc.msg, mapping.Source{})
			anchor := t0
			if !tc.anchor.IsZero() {
				anchor = tc.anchor
			}
			for name, w := range tc.want {
				s, ok := spans[name]
				if !ok {
					t.Fatalf("no span %q", name)
				}
				if got := s.StartTime().Sub(anchor); got != w.start {
					t.Errorf("%s start = %v, want %v", name, got, w.start)
				}
				if got := s.EndTime().Sub(anchor); got != w.end {
					t.Errorf("%s end = %v, want %v", name, got, w.end)
				}
			}
		})
	}
}
