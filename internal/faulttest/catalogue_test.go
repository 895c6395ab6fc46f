package faulttest

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// stormMaxBytes is WORKER_MAX_MESSAGE_BYTES in the poison storm: below the
// server's max payload (4 MiB in these tests), so that an oversized message
// can be published and must be refused by the worker.
const stormMaxBytes = 2 << 20

// poison is a kind of message that can never be mapped: the worker must
// dead-letter it with a reason containing reason.
type poison struct {
	name   string
	body   func(id string) []byte
	reason string
	heavy  bool // megabytes or many thousands of steps: published only a few times
}

func raw(s string) func(string) []byte { return func(string) []byte { return []byte(s) } }

// withID formats a message whose id is the message's own.
func withID(format string) func(string) []byte {
	return func(id string) []byte { return fmt.Appendf(nil, format, id) }
}

func flatSteps(n int) string {
	return strings.TrimSuffix(strings.Repeat(`{"name":"s"},`, n), ",")
}

func nestedSteps(depth int) string {
	return strings.Repeat(`{"name":"s","steps":[`, depth-1) + `{"name":"leaf"}` + strings.Repeat(`]}`, depth-1)
}

// poisons is every way of being malformed the storm publishes.
var poisons = []poison{
	{name: "invalid-json", body: withID(`{"id":%q,"name":`), reason: "invalid JSON"},
	{name: "truncated", body: withID(`{"id":%q,"name":"n","steps":[{"name":"a","latency_ms":12`), reason: "invalid JSON"},
	{name: "empty-body", body: raw(""), reason: "invalid JSON"},
	{name: "whitespace-only", body: raw(" \n\t "), reason: "invalid JSON"},
	{name: "json-null", body: raw("null"), reason: "id: required"},
	{name: "json-number", body: raw("42"), reason: "message is a JSON number, want an object"},
	{name: "json-string", body: withID(`%q`), reason: "message is a JSON string, want an object"},
	{name: "json-array", body: withID(`[{"id":%q,"name":"n"}]`), reason: "message is a JSON array, want an object"},
	{name: "trailing-garbage", body: withID(`{"id":%q,"name":"n"} x`), reason: "invalid JSON"},
	{name: "two-objects", body: withID(`{"id":%q,"name":"n"}{"id":"b","name":"n"}`), reason: "invalid JSON"},
	{name: "byte-order-mark", body: withID("\xef\xbb\xbf" + `{"id":%q,"name":"n"}`), reason: "invalid JSON"},
	{name: "nul-bytes", body: raw("\x00\x00\x00\x00"), reason: "invalid JSON"},
	{name: "binary", body: func(id string) []byte {
		r := rand.New(rand.NewPCG(uint64(len(id)), 7))
		b := make([]byte, 512)
		for i := range b {
			b[i] = byte(r.UintN(256))
		}
		b[0] = 0xff
		return b
	}, reason: "invalid JSON"},
	{name: "invalid-utf8-outside-strings", body: withID(`{"id":%q,"name":"n"` + "\xff\xfe}"), reason: "invalid JSON"},
	{name: "missing-id", body: raw(`{"name":"n"}`), reason: "id: required"},
	{name: "empty-id", body: raw(`{"id":"","name":"n"}`), reason: "id: required"},
	{name: "id-number", body: raw(`{"id":42,"name":"n"}`), reason: "id: must be a string, got number"},
	{name: "missing-name", body: withID(`{"id":%q}`), reason: "name: required"},
	{name: "name-array", body: withID(`{"id":%q,"name":["n"]}`), reason: "name: must be a string, got array"},
	{name: "step-missing-name", body: withID(`{"id":%q,"name":"n","steps":[{"name":"a"},{"kind":"llm"}]}`), reason: "steps[1].name: required"},
	{name: "steps-object", body: withID(`{"id":%q,"name":"n","steps":{"name":"a"}}`), reason: "steps: must be an array, got object"},
	{name: "kind-number", body: withID(`{"id":%q,"name":"n","steps":[{"name":"a","kind":7}]}`), reason: "steps[0].kind: must be a string, got number"},
	{name: "latency-string", body: withID(`{"id":%q,"name":"n","latency_ms":"fast"}`), reason: "latency_ms: must be a number, got string"},
	{name: "latency-negative", body: withID(`{"id":%q,"name":"n","latency_ms":-5}`), reason: "latency_ms: must be a non-negative number"},
	{name: "latency-overflow", body: withID(`{"id":%q,"name":"n","latency_ms":1e400}`), reason: "latency_ms: must be a number"},
	{name: "latency-centuries", body: withID(`{"id":%q,"name":"n","latency_ms":1e300}`), reason: "latency_ms: must be a non-negative number"},
	{name: "bad-time", body: withID(`{"id":%q,"name":"n","started_at":"yesterday"}`), reason: "started_at: must be an RFC 3339 time"},
	{name: "ended-before-started", body: withID(`{"id":%q,"name":"n","started_at":"2026-11-24T10:00:01Z","ended_at":"2026-11-24T10:00:00Z"}`), reason: "ended_at: is before started_at"},
	{name: "metadata-nested", body: withID(`{"id":%q,"name":"n","metadata":{"k":{"deep":1}}}`), reason: "metadata.k: must be a string, number, boolean or null"},
	{name: "metadata-array", body: withID(`{"id":%q,"name":"n","metadata":[1,2]}`), reason: "metadata: must be an object, got array"},
	{name: "metadata-empty-key", body: withID(`{"id":%q,"name":"n","metadata":{"":1}}`), reason: "metadata: keys must not be empty"},
	{name: "error-string", body: withID(`{"id":%q,"name":"n","error":"boom"}`), reason: "error: must be an object, got string"},
	{name: "trace-id-uppercase", body: withID(`{"id":%q,"name":"n","trace_id":"4BF92F3577B34DA6A3CE929D0E0E4736"}`), reason: "trace_id: must be 32 lowercase hex"},
	{name: "trace-id-short", body: withID(`{"id":%q,"name":"n","trace_id":"4bf92f3577b34da6"}`), reason: "trace_id: must be 32 lowercase hex"},
	{name: "trace-id-zero", body: withID(`{"id":%q,"name":"n","trace_id":"00000000000000000000000000000000"}`), reason: "trace_id: must be 32 lowercase hex"},
	{name: "trace-id-number", body: withID(`{"id":%q,"name":"n","trace_id":4}`), reason: "trace_id: must be a string, got number"},
	{name: "span-id-bad", body: withID(`{"id":%q,"name":"n","steps":[{"name":"a","span_id":"xyz"}]}`), reason: "steps[0].span_id: must be 16 lowercase hex"},
	{name: "duplicate-step-ids", body: withID(`{"id":%q,"name":"n","steps":[{"id":"a","name":"a"},{"id":"a","name":"b"}]}`), reason: "sibling ids must be unique"},
	{name: "version-2", body: withID(`{"version":2,"id":%q,"name":"n"}`), reason: "unsupported version 2"},
	{name: "version-0", body: withID(`{"version":0,"id":%q,"name":"n"}`), reason: "unsupported version 0"},
	{name: "version-quoted-2", body: withID(`{"version":"2.1","id":%q,"name":"n"}`), reason: "unsupported version 2.1"},
	{name: "version-word", body: withID(`{"version":"one","id":%q,"name":"n"}`), reason: "version: must be a number"},
	{name: "tokens-negative", body: withID(`{"id":%q,"name":"n","steps":[{"name":"a","usage":{"input_tokens":-1}}]}`), reason: "input_tokens: must not be negative"},
	{name: "tokens-fraction", body: withID(`{"id":%q,"name":"n","steps":[{"name":"a","usage":{"output_tokens":1.5}}]}`), reason: "output_tokens: must be a number"},
	{name: "cost-negative", body: withID(`{"id":%q,"name":"n","steps":[{"name":"a","cost":-0.01}]}`), reason: "cost: must be a non-negative number"},
	{name: "long-non-ascii-time", body: func(id string) []byte {
		// The reason quotes the value: over 1024 bytes, made of 2-byte
		// characters, it must be cut on a character boundary.
		return fmt.Appendf(nil, `{"id":%q,"name":"n","started_at":"%s"}`, id, strings.Repeat("é", 700))
	}, reason: "started_at: must be an RFC 3339 time"},
	{name: "too-deep", body: func(id string) []byte {
		return fmt.Appendf(nil, `{"id":%q,"name":"n","steps":[%s]}`, id, nestedSteps(65))
	}, reason: "nested deeper than the limit of 64"},
	{name: "steps-10001", heavy: true, body: func(id string) []byte {
		return fmt.Appendf(nil, `{"id":%q,"name":"n","steps":[%s]}`, id, flatSteps(10_001))
	}, reason: "more than the limit of 10000 steps"},
	{name: "steps-100k", heavy: true, body: func(id string) []byte {
		return fmt.Appendf(nil, `{"id":%q,"name":"n","steps":[%s]}`, id, flatSteps(100_000))
	}, reason: "more than the limit of 10000 steps"},
	{name: "json-nesting-20k", heavy: true, body: func(id string) []byte {
		return fmt.Appendf(nil, `{"id":%q,"name":"n","input":%s1%s}`, id, strings.Repeat("[", 20_000), strings.Repeat("]", 20_000))
	}, reason: "nested more than 10000 levels deep"},
	{name: "huge-string", heavy: true, body: func(id string) []byte {
		return fmt.Appendf(nil, `{"id":%q,"name":"n","input":"%s"}`, id, strings.Repeat("x", 3<<20))
	}, reason: fmt.Sprintf("over the limit of %d", stormMaxBytes)},
}

// oddity is a strange but valid message: the worker must export it, with
// spans spans (its trace id is derived from its id unless traceID is set).
type oddity struct {
	name    string
	body    func(id string) []byte
	spans   int
	header  map[string]string
	traceID string // "-": not checked
}

// oddities are published once each among the storm's good results.
var oddities = []oddity{
	{name: "invalid-utf8-in-strings", spans: 2, body: withID(`{"id":%q,"name":"n` + "\xff" + `","customer_id":"c` + "\xc3" + `","metadata":{"k` + "\xfe" + `":"v` + "\xff" + `"},"input":"` + "\xed\xa0\x80" + `","output":{"a":"` + "\xf0\x28\x8c\x28" + `"},"error":{"type":"E` + "\xff" + `","message":"m` + "\xff" + `"},"steps":[{"name":"` + "\xc0\xaf" + `","model":"m` + "\xff" + `"}]}`)},
	{name: "lone-surrogate-escapes", spans: 1, body: withID(`{"id":%q,"name":"\ud800","input":"\udc00\ud800x","metadata":{"k":"\udfff"}}`)},
	{name: "nul-escapes", spans: 2, body: withID(`{"id":%q,"name":"\u0000","steps":[{"name":"a\u0000b","input":"\u0000"}]}`)},
	{name: "unicode", spans: 2, body: withID(`{"id":%q,"name":"поиск 検索 بحث 🔍","steps":[{"name":"👩‍👩‍👧","kind":"🧪"}]}`)},
	{name: "nulls-everywhere", spans: 2, body: withID(`{"version":null,"id":%q,"trace_id":null,"name":"n","service":null,"started_at":null,"ended_at":null,"latency_ms":null,"status":null,"error":null,"input":null,"output":null,"metadata":null,"steps":[{"name":"a","usage":null,"cost":null,"steps":null}]}`)},
	{name: "unknown-fields", spans: 2, body: withID(`{"id":%q,"name":"n","future":{"x":[1,2,3]},"steps":[{"name":"a","also_future":true}]}`)},
	{name: "duplicate-keys", spans: 1, body: withID(`{"id":%q,"name":"first","name":"second"}`)},
	{name: "version-1.7", spans: 1, body: withID(`{"version":1.7,"id":%q,"name":"n"}`)},
	{name: "version-quoted-1", spans: 1, body: withID(`{"version":"1","id":%q,"name":"n"}`)},
	{name: "unknown-kind", spans: 2, body: withID(`{"id":%q,"name":"n","steps":[{"name":"a","kind":"banana"}]}`)},
	{name: "failed-with-error", spans: 2, body: withID(`{"id":%q,"name":"n","status":"failed","error":{"type":"TimeoutError","message":"line1\nline2"},"steps":[{"name":"a","status":"error"}]}`)},
	{name: "time-offsets", spans: 2, body: withID(`{"id":%q,"name":"n","started_at":"2026-11-24T15:30:00.123456789+05:30","steps":[{"name":"a","ended_at":"2026-11-24T10:00:01Z","latency_ms":0.001}]}`)},
	{name: "big-input", spans: 1, body: func(id string) []byte {
		return fmt.Appendf(nil, `{"id":%q,"name":"n","input":"%s"}`, id, strings.Repeat("y", 1536<<10))
	}},
	{name: "max-steps", spans: 10_001, body: func(id string) []byte {
		return fmt.Appendf(nil, `{"id":%q,"name":"n","steps":[%s]}`, id, flatSteps(10_000))
	}},
	{name: "max-depth", spans: 65, body: func(id string) []byte {
		return fmt.Appendf(nil, `{"id":%q,"name":"n","steps":[%s]}`, id, nestedSteps(64))
	}},
	{name: "many-metadata-keys", spans: 1, body: func(id string) []byte {
		var kv []string
		for i := range 1000 {
			kv = append(kv, fmt.Sprintf(`"k%d":%d`, i, i))
		}
		return fmt.Appendf(nil, `{"id":%q,"name":"n","metadata":{%s}}`, id, strings.Join(kv, ","))
	}},
	{name: "traceparent-garbage", spans: 1, header: map[string]string{"traceparent": "not-a-traceparent"}, body: withID(`{"id":%q,"name":"n"}`)},
	{name: "traceparent", spans: 1, traceID: "0af7651916cd43dd8448eb211c80319c",
		header: map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}, body: withID(`{"id":%q,"name":"n"}`)},
	{name: "explicit-ids", spans: 2, traceID: "4bf92f3577b34da6a3ce929d0e0e4736", body: withID(`{"id":%q,"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","name":"n","steps":[{"name":"a","span_id":"00f067aa0ba902b7"}]}`)},
}
