package mapping

import (
	"bytes"
	"encoding/json"
	"strconv"
	"sync"
	"unicode/utf8"
)

// decodeFast decodes a workflow result as encoding/json would, for the
// messages backends send: keys spelled as the schema spells them, each at
// most once per object, strings without escapes in the fields decoded as
// strings. It reports false for anything else — another spelling or case
// of a key, a duplicate, an escape, a type encoding/json would refuse,
// invalid JSON — and Decode then decodes with encoding/json, the
// reference, which makes the same Result or the error to report: error
// texts and field paths are encoding/json's, and duplicate keys and
// case-insensitive matching behave as it has them. Unknown keys are
// skipped, as there; TestFastDecoderKnowsEveryField fails when a field of
// the schema is missing from the key sets below, and FuzzDecodeFast holds
// the two decoders to the same Result.
//
// It exists for speed: encoding/json checks the whole message, then walks
// it again through reflection, making each string, number and raw value
// an allocation of its own: about 25 µs and 98 allocations per 8-step
// result, against 9 µs and 13 here. Strings are cut from one copy of the
// message, raw values from another, numbers from small slabs. It was
// measured against github.com/goccy/go-json (7.4 µs, 80 allocations) and
// github.com/bytedance/sonic (13.6 µs, 85 allocations) and kept for its
// allocations and for adding no dependency (docs/BENCHMARKS.md).
func decodeFast(data []byte, r *Result, slab *[]Step) bool {
	d := fastDecoders.Get().(*fastDecoder)
	defer d.release()
	d.data = data
	d.slab = slab
	d.space()
	if !d.result(r) {
		return false
	}
	d.space()
	return d.i == len(d.data)
}

// fastDecoders keeps decoders for their scratch space.
var fastDecoders = sync.Pool{New: func() any { return new(fastDecoder) }}

// release forgets the message and what was cut from it, and returns d to
// the pool with its scratch space.
func (d *fastDecoder) release() {
	clear(d.scratch[:cap(d.scratch)])
	*d = fastDecoder{scratch: d.scratch[:0]}
	fastDecoders.Put(d)
}

// maxFastDepth bounds the nesting the fast path follows; deeper messages
// are left to encoding/json (and to the step depth limit).
const maxFastDepth = 256

type fastDecoder struct {
	data  []byte
	i     int
	depth int

	str     string // a copy of data that strings are cut from
	raw     []byte // a copy of data that raw values are cut from
	floats  []float64
	ints    []int64
	usages  []Usage
	scratch []Step // steps being decoded, of every open array; kept by the pool
	// slab is where decoded step arrays are cut from: the Decoded's, which
	// Recycle reuses (nil: each array is an allocation of its own).
	slab *[]Step
}

// The fields of a result and a step. Unknown keys are skipped.
func (d *fastDecoder) result(r *Result) bool {
	return d.object(func(key []byte) bool {
		switch string(key) {
		case "version":
			return d.number(&r.Version)
		case "id":
			return d.string(&r.ID)
		case "trace_id":
			return d.string(&r.TraceID)
		case "name":
			return d.string(&r.Name)
		case "service":
			return d.string(&r.Service)
		case "organization":
			return d.string(&r.Organization)
		case "experiment_id":
			return d.string(&r.ExperimentID)
		case "customer_id":
			return d.string(&r.CustomerID)
		case "thread_id":
			return d.string(&r.ThreadID)
		case "steps":
			steps, ok := d.steps()
			r.Steps = steps
			return ok
		}
		return d.execution(key, &r.Execution)
	}, resultKeys)
}

// step decodes the step at d.scratch[i]. It finds the step again for each
// key: nested steps grow the scratch space, which may move it.
func (d *fastDecoder) step(i int) bool {
	return d.object(func(key []byte) bool {
		s := &d.scratch[i]
		switch string(key) {
		case "id":
			return d.string(&s.ID)
		case "name":
			return d.string(&s.Name)
		case "kind":
			return d.string(&s.Kind)
		case "span_id":
			return d.string(&s.SpanID)
		case "model":
			return d.string(&s.Model)
		case "provider":
			return d.string(&s.Provider)
		case "usage":
			return d.usage(&s.Usage)
		case "cost":
			return d.float(&s.Cost)
		case "steps":
			steps, ok := d.steps()
			d.scratch[i].Steps = steps
			return ok
		}
		return d.execution(key, &s.Execution)
	}, stepKeys)
}

// execution decodes a field of Execution, or skips an unknown key's value.
func (d *fastDecoder) execution(key []byte, e *Execution) bool {
	switch string(key) {
	case "started_at":
		return d.string(&e.StartedAt)
	case "ended_at":
		return d.string(&e.EndedAt)
	case "latency_ms":
		return d.float(&e.LatencyMS)
	case "status":
		return d.string(&e.Status)
	case "error":
		return d.errorInfo(&e.Error)
	case "input":
		return d.rawValue(&e.Input)
	case "output":
		return d.rawValue(&e.Output)
	case "metadata":
		return d.metadata(&e.Metadata)
	}
	return d.skip()
}

func (d *fastDecoder) errorInfo(p **ErrorInfo) bool {
	if d.null() {
		return true
	}
	e := new(ErrorInfo)
	*p = e
	return d.object(func(key []byte) bool {
		switch string(key) {
		case "type":
			return d.string(&e.Type)
		case "message":
			return d.string(&e.Message)
		}
		return d.skip()
	}, errorKeys)
}

func (d *fastDecoder) usage(p **Usage) bool {
	if d.null() {
		return true
	}
	u := slabValue(&d.usages, Usage{}, 8)
	*p = u
	return d.object(func(key []byte) bool {
		switch string(key) {
		case "input_tokens":
			return d.int(&u.InputTokens)
		case "output_tokens":
			return d.int(&u.OutputTokens)
		}
		return d.skip()
	}, usageKeys)
}

// steps decodes an array of steps (or null) into a slice of its exact
// length: the steps are decoded on a stack shared by every level of
// nesting, then copied out.
func (d *fastDecoder) steps() ([]Step, bool) {
	if d.null() {
		return nil, true
	}
	if !d.enter('[') {
		return nil, false
	}
	base := len(d.scratch)
	d.space()
	if d.peek() == ']' {
		d.i++
		d.depth--
		return []Step{}, true // as encoding/json: empty, not nil
	}
	for {
		d.scratch = append(d.scratch, Step{})
		if !d.step(len(d.scratch) - 1) {
			return nil, false
		}
		d.space()
		switch d.next() {
		case ',':
			d.space()
			continue
		case ']':
			d.depth--
			steps := d.cut(d.scratch[base:])
			d.scratch = d.scratch[:base]
			return steps, true
		}
		return nil, false
	}
}

// cut returns a copy of steps, from the slab when there is one. A slab
// without room is replaced, not grown: the arrays already cut from it
// stay where they are, and only the latest slab is recycled.
func (d *fastDecoder) cut(steps []Step) []Step {
	if d.slab == nil {
		return append([]Step(nil), steps...)
	}
	s := *d.slab
	if cap(s)-len(s) < len(steps) {
		s = make([]Step, 0, max(len(steps), 2*cap(s), minStepSlab))
	}
	n := len(s)
	s = append(s, steps...)
	*d.slab = s
	return s[n:len(s):len(s)]
}

// minStepSlab is the smallest slab of steps a Decoded is given.
const minStepSlab = 16

func (d *fastDecoder) metadata(p *map[string]json.RawMessage) bool {
	if d.null() {
		return true
	}
	m := make(map[string]json.RawMessage)
	*p = m
	if !d.enter('{') {
		return false
	}
	d.space()
	if d.peek() == '}' {
		d.i++
		d.depth--
		return true
	}
	for {
		var k string
		if d.peek() != '"' || !d.string(&k) {
			return false
		}
		d.space()
		if d.next() != ':' {
			return false
		}
		d.space()
		var v json.RawMessage
		if !d.rawValue(&v) {
			return false
		}
		m[k] = v // a repeated key: the last wins, as in encoding/json
		if more, ok := d.endMember(); !more {
			return ok
		}
	}
}

// Key sets of the objects, for object's check of keys spelled otherwise.
var (
	resultKeys = []string{"version", "id", "trace_id", "name", "service", "organization", "experiment_id", "customer_id", "thread_id", "steps",
		"started_at", "ended_at", "latency_ms", "status", "error", "input", "output", "metadata"}
	stepKeys = []string{"id", "name", "kind", "span_id", "model", "provider", "usage", "cost", "steps",
		"started_at", "ended_at", "latency_ms", "status", "error", "input", "output", "metadata"}
	errorKeys = []string{"type", "message"}
	usageKeys = []string{"input_tokens", "output_tokens"}
)

// object decodes an object, calling field with each key, positioned at
// its value. It gives up on a key that is not one of keys but matches one
// case-insensitively (encoding/json would decode it into that field), on
// a key seen twice, and on keys with escapes or non-ASCII bytes.
func (d *fastDecoder) object(field func(key []byte) bool, keys []string) bool {
	if !d.enter('{') {
		return false
	}
	d.space()
	if d.peek() == '}' {
		d.i++
		d.depth--
		return true
	}
	var seen uint64 // bit i: keys[i] was seen
	for {
		if d.peek() != '"' {
			return false
		}
		// Keys are short: a loop beats bytes.IndexByte's call.
		start := d.i + 1
		end := start
		for end < len(d.data) && d.data[end] != '"' {
			end++
		}
		if end == len(d.data) {
			return false
		}
		key := d.data[start:end]
		d.i = end + 1
		known := -1
		for i, k := range keys {
			if string(key) == k {
				known = i
				break
			}
		}
		if known >= 0 {
			if seen&(1<<known) != 0 {
				return false
			}
			seen |= 1 << known
		} else if !plainUnknownKey(key, keys) {
			return false
		}
		d.space()
		if d.next() != ':' {
			return false
		}
		d.space()
		if !field(key) {
			return false
		}
		if more, ok := d.endMember(); !more {
			return ok
		}
	}
}

// plainUnknownKey reports whether key, not one of keys, is surely ignored
// by encoding/json: printable ASCII, no escape, and no case-insensitive
// match of a key.
func plainUnknownKey(key []byte, keys []string) bool {
	for _, c := range key {
		if c < 0x20 || c >= 0x80 || c == '\\' {
			return false
		}
	}
	for _, k := range keys {
		if len(k) == len(key) && bytes.EqualFold(key, []byte(k)) {
			return false
		}
	}
	return true
}

// string decodes a string without escapes, valid UTF-8, or null (which
// leaves *p as it is, as in encoding/json).
func (d *fastDecoder) string(p *string) bool {
	if d.null() {
		return true
	}
	if d.peek() != '"' {
		return false
	}
	start := d.i + 1
	end := start
	var high byte // the bytes or'ed: ASCII alone needs no UTF-8 check
	for ; end < len(d.data); end++ {
		c := d.data[end]
		if c == '"' {
			break
		}
		if c < 0x20 || c == '\\' {
			return false
		}
		high |= c
	}
	if end == len(d.data) || high >= utf8.RuneSelf && !utf8.Valid(d.data[start:end]) {
		return false
	}
	if d.str == "" {
		d.str = string(d.data)
	}
	*p = d.str[start:end]
	d.i = end + 1
	return true
}

// float decodes a number into a new float64, or null.
func (d *fastDecoder) float(p **float64) bool {
	if d.null() {
		return true
	}
	s, ok := d.numberText()
	if !ok {
		return false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil { // out of range: encoding/json refuses it
		return false
	}
	*p = slabValue(&d.floats, f, 16)
	return true
}

// int decodes an integer into a new int64, or null.
func (d *fastDecoder) int(p **int64) bool {
	if d.null() {
		return true
	}
	s, ok := d.numberText()
	if !ok {
		return false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil { // a fraction, an exponent or out of range: refused
		return false
	}
	*p = slabValue(&d.ints, n, 16)
	return true
}

// slabValue appends v to *slab and returns a pointer to it: the values a
// Result points to (floats, ints, usages) are cut from small slabs, an
// allocation per size of them rather than per value. A full slab is
// replaced, never grown, as the pointers already handed out point into it.
func slabValue[T any](slab *[]T, v T, size int) *T {
	if len(*slab) == cap(*slab) {
		*slab = make([]T, 0, size)
	}
	*slab = append(*slab, v)
	return &(*slab)[len(*slab)-1]
}

// number decodes a number literal into a json.Number, or null.
func (d *fastDecoder) number(p *json.Number) bool {
	if d.null() {
		return true
	}
	s, ok := d.numberText()
	*p = json.Number(s)
	return ok
}

// numberText returns the number literal at d.i, cut from the string copy.
func (d *fastDecoder) numberText() (string, bool) {
	start := d.i
	if !d.skipNumber() {
		return "", false
	}
	if d.str == "" {
		d.str = string(d.data)
	}
	return d.str[start:d.i], true
}

// rawValue copies the value at d.i as encoding/json's RawMessage does: its
// text, null included, without the space around it.
func (d *fastDecoder) rawValue(p *json.RawMessage) bool {
	start := d.i
	if !d.skip() {
		return false
	}
	if d.raw == nil {
		d.raw = bytes.Clone(d.data)
	}
	*p = d.raw[start:d.i:d.i]
	return true
}

// endMember consumes what follows an object member: a ',' before the next
// one (more) or the closing '}' (ok, not more). Anything else fails.
func (d *fastDecoder) endMember() (more, ok bool) {
	d.space()
	switch d.next() {
	case ',':
		d.space()
		return true, true
	case '}':
		d.depth--
		return false, true
	}
	return false, false
}

// null consumes a null literal.
func (d *fastDecoder) null() bool {
	if bytes.HasPrefix(d.data[d.i:], []byte("null")) {
		d.i += 4
		return true
	}
	return false
}

// skip consumes a valid JSON value of any kind.
func (d *fastDecoder) skip() bool {
	switch d.peek() {
	case '{':
		if !d.enter('{') {
			return false
		}
		d.space()
		if d.peek() == '}' {
			d.i++
			d.depth--
			return true
		}
		for {
			if d.peek() != '"' || !d.skipString() {
				return false
			}
			d.space()
			if d.next() != ':' {
				return false
			}
			d.space()
			if !d.skip() {
				return false
			}
			if more, ok := d.endMember(); !more {
				return ok
			}
		}
	case '[':
		if !d.enter('[') {
			return false
		}
		d.space()
		if d.peek() == ']' {
			d.i++
			d.depth--
			return true
		}
		for {
			if !d.skip() {
				return false
			}
			d.space()
			switch d.next() {
			case ',':
				d.space()
				continue
			case ']':
				d.depth--
				return true
			}
			return false
		}
	case '"':
		return d.skipString()
	case 't':
		return d.literal("true")
	case 'f':
		return d.literal("false")
	case 'n':
		return d.literal("null")
	}
	return d.skipNumber()
}

func (d *fastDecoder) literal(lit string) bool {
	if bytes.HasPrefix(d.data[d.i:], []byte(lit)) {
		d.i += len(lit)
		return true
	}
	return false
}

// skipString consumes a valid JSON string: no control character, only
// the escapes JSON has.
func (d *fastDecoder) skipString() bool {
	i := d.i + 1
	for i < len(d.data) {
		switch c := d.data[i]; {
		case c == '"':
			d.i = i + 1
			return true
		case c < 0x20:
			return false
		case c == '\\':
			if i+1 >= len(d.data) {
				return false
			}
			switch d.data[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(d.data) {
					return false
				}
				for _, h := range d.data[i+2 : i+6] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return false
					}
				}
				i += 6
			default:
				return false
			}
		default:
			i++
		}
	}
	return false
}

// skipNumber consumes a number as JSON's grammar has it:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (d *fastDecoder) skipNumber() bool {
	i := d.i
	if i < len(d.data) && d.data[i] == '-' {
		i++
	}
	switch {
	case i < len(d.data) && d.data[i] == '0':
		i++
	case i < len(d.data) && '1' <= d.data[i] && d.data[i] <= '9':
		i = digits(d.data, i)
	default:
		return false
	}
	if i < len(d.data) && d.data[i] == '.' {
		j := digits(d.data, i+1)
		if j == i+1 {
			return false
		}
		i = j
	}
	if i < len(d.data) && (d.data[i] == 'e' || d.data[i] == 'E') {
		i++
		if i < len(d.data) && (d.data[i] == '+' || d.data[i] == '-') {
			i++
		}
		j := digits(d.data, i)
		if j == i {
			return false
		}
		i = j
	}
	d.i = i
	return true
}

func digits(data []byte, i int) int {
	for i < len(data) && '0' <= data[i] && data[i] <= '9' {
		i++
	}
	return i
}

// enter consumes the opening delimiter of an object or array.
func (d *fastDecoder) enter(delim byte) bool {
	if d.peek() != delim || d.depth >= maxFastDepth {
		return false
	}
	d.i++
	d.depth++
	return true
}

// space skips JSON whitespace.
func (d *fastDecoder) space() {
	for d.i < len(d.data) {
		switch d.data[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// peek returns the byte at d.i, or 0 at the end.
func (d *fastDecoder) peek() byte {
	if d.i < len(d.data) {
		return d.data[d.i]
	}
	return 0
}

// next consumes and returns the byte at d.i, or 0 at the end.
func (d *fastDecoder) next() byte {
	c := d.peek()
	d.i++
	return c
}
