package faulttest

import (
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/spanferry/spanferry/mapping"
)

// message is one message to publish, with Nats-Msg-Id = id.
type message struct {
	id     string
	body   []byte
	header map[string]string
}

// goodResult returns a valid workflow result with a shape that varies with
// i (1 to 6 steps, some nested, llm and tool steps, input and output of a
// few hundred bytes), and what it must map to: its trace id is derived
// from its id.
func goodResult(id string, i int) (message, expect) {
	var steps []string
	n := 1 + i%5
	spans := 1 + n
	for s := range n {
		kind := []string{"llm", "tool", "retriever", "task"}[s%4]
		step := fmt.Sprintf(`{"id":"s%d","name":"step-%d","kind":%q,"latency_ms":%d,"input":{"q":%q},"output":%q`,
			s, s, kind, 10+s*7, strings.Repeat("question ", 10+i%20), strings.Repeat("answer ", 20+s))
		if kind == "llm" {
			step += `,"model":"gpt-4o","provider":"openai","usage":{"input_tokens":812,"output_tokens":64},"cost":0.00231`
		}
		if s == 0 && i%3 == 0 {
			step += `,"steps":[{"name":"nested","kind":"tool","latency_ms":3}]`
			spans++
		}
		steps = append(steps, step+"}")
	}
	body := fmt.Sprintf(`{"version":1,"id":%q,"name":"faulttest-workflow","service":"faulttest","started_at":"2026-11-24T10:00:00.000Z","status":"completed","customer_id":"cust-%d","metadata":{"i":%d},"steps":[%s]}`,
		id, i%100, i, strings.Join(steps, ","))
	return message{id: id, body: []byte(body)}, expect{spans: spans, traceID: mapping.DeriveTraceID(id).String()}
}

// goodResults returns n good results with ids prefix-000000… and what each
// must map to.
func goodResults(prefix string, n int) ([]message, map[string]expect) {
	msgs := make([]message, n)
	want := make(map[string]expect, n)
	for i := range n {
		id := fmt.Sprintf("%s-%06d", prefix, i)
		msgs[i], want[id] = goodResult(id, i)
	}
	return msgs, want
}

// publish publishes msgs on the results subject, in windows of
// asynchronous publishes, and fails the test unless JetStream stored every
// one of them (a duplicate id is a mistake of the test).
func (s *natsServer) publish(msgs []message) {
	s.t.Helper()
	const window = 256
	for start := 0; start < len(msgs); start += window {
		batch := msgs[start:min(start+window, len(msgs))]
		futures := make([]jetstream.PubAckFuture, 0, len(batch))
		for _, m := range batch {
			nm := nats.NewMsg(subject)
			nm.Data = m.body
			nm.Header.Set(jetstream.MsgIDHeader, m.id)
			for k, v := range m.header {
				nm.Header.Set(k, v)
			}
			f, err := s.js.PublishMsgAsync(nm)
			if err != nil {
				s.t.Fatalf("publish %s: %v", m.id, err)
			}
			futures = append(futures, f)
		}
		select {
		case <-s.js.PublishAsyncComplete():
		case <-time.After(time.Minute):
			s.t.Fatal("publishes not acknowledged within a minute")
		}
		for i, f := range futures {
			select {
			case ack := <-f.Ok():
				if ack.Duplicate {
					s.t.Fatalf("publish %s: a duplicate", batch[i].id)
				}
			case err := <-f.Err():
				s.t.Fatalf("publish %s: %v", batch[i].id, err)
			}
		}
	}
}
