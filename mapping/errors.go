package mapping

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
)

var (
	// ErrInvalid is matched (errors.Is) by every error Decode returns for a
	// message that can never be mapped: undecodable, invalid or over a
	// limit. Such a message is bad input, not a transient failure.
	ErrInvalid = errors.New("invalid workflow result")

	// ErrUnsupportedVersion is matched by the error for a major version
	// other than 1. It also matches ErrInvalid.
	ErrUnsupportedVersion = errors.New("unsupported workflow result version")

	// ErrTooLarge is matched by the error for a message over a limit
	// (bytes, steps, depth). It also matches ErrInvalid.
	ErrTooLarge = errors.New("workflow result over a limit")
)

// FieldError is the error for a message that is not a valid workflow
// result. Path names the field, as in "steps[2].steps[0].name"; it is empty
// when the message as a whole is at fault.
type FieldError struct {
	Path string
	Msg  string
	// Err, when set, is a more specific sentinel (ErrUnsupportedVersion,
	// ErrTooLarge) the error also matches.
	Err error
}

func (e *FieldError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// Is reports whether target is ErrInvalid or the error's sentinel.
func (e *FieldError) Is(target error) bool {
	return target == ErrInvalid || (e.Err != nil && errors.Is(e.Err, target))
}

// IsPermanent reports whether err says the message can never succeed.
func IsPermanent(err error) bool { return errors.Is(err, ErrInvalid) }

// path is a field path under construction. It is only turned into a string
// when there is an error to report, so validating a good message builds no
// strings.
type path []pathElem

type pathElem struct {
	field string
	index int // -1 for a field
}

func (p path) field(name string) path { return append(p, pathElem{name, -1}) }

func (p path) index(name string, i int) path { return append(p, pathElem{name, i}) }

func (p path) String() string {
	var b strings.Builder
	for i, e := range p {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(e.field)
		if e.index >= 0 {
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(e.index))
			b.WriteByte(']')
		}
	}
	return b.String()
}

func (p path) errorf(msg string) *FieldError {
	return &FieldError{Path: p.String(), Msg: msg}
}

// jsonError turns an encoding/json error into a FieldError. encoding/json
// names fields without array indexes ("steps.steps.name"), so the path is
// recovered from the error's offset by walking the message's tokens again;
// this only runs for bad messages.
func jsonError(data []byte, err error) *FieldError {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		p := pathAt(data, typeErr.Offset)
		want := typeErr.Type.Kind().String()
		switch want {
		case "struct", "map":
			want = "object"
		case "slice":
			want = "array"
		case "float64", "int64":
			want = "number"
		}
		if p == "" {
			return &FieldError{Msg: "message is a JSON " + typeErr.Value + ", want an object"}
		}
		return &FieldError{Path: p, Msg: "must be " + article(want) + ", got " + typeErr.Value}
	case errors.As(err, &syntaxErr):
		if strings.Contains(syntaxErr.Error(), "exceeded max depth") {
			return &FieldError{Msg: "message nested more than 10000 levels deep", Err: ErrTooLarge}
		}
		return &FieldError{Msg: "invalid JSON at byte " + strconv.FormatInt(syntaxErr.Offset, 10) + ": " + syntaxErr.Error()}
	case strings.Contains(err.Error(), "into Number"):
		// json.Number reports a quoted non-number with a plain error;
		// version is the only Number in the schema.
		return &FieldError{Path: "version", Msg: "must be a number"}
	default:
		return &FieldError{Msg: "invalid JSON: " + err.Error()}
	}
}

func article(kind string) string {
	if strings.ContainsAny(kind[:1], "aeiou") {
		return "an " + kind
	}
	return "a " + kind
}

// pathAt returns the path of the value that ends at or after offset.
func pathAt(data []byte, offset int64) string {
	type frame struct {
		array    bool
		index    int
		key      string
		wantsKey bool
	}
	var stack []frame
	render := func() string {
		var p path
		for _, f := range stack {
			if f.array {
				if len(p) > 0 && p[len(p)-1].index < 0 {
					p[len(p)-1].index = f.index
				} else {
					p = p.index("", f.index)
				}
			} else if !f.wantsKey || f.key != "" {
				p = p.field(f.key)
			}
		}
		return p.String()
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		tok, err := dec.Token()
		if err != nil {
			return render()
		}
		top := len(stack) - 1
		isKey := top >= 0 && !stack[top].array && stack[top].wantsKey
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:top]
			if top > 0 && !stack[top-1].array {
				stack[top-1].wantsKey = true
			}
			continue
		}
		if isKey {
			stack[top].key = tok.(string)
			stack[top].wantsKey = false
			continue
		}
		if top >= 0 && stack[top].array {
			stack[top].index++
		}
		if d, ok := tok.(json.Delim); ok {
			if dec.InputOffset() >= offset {
				return render()
			}
			stack = append(stack, frame{array: d == '[', index: -1, wantsKey: d == '{'})
			continue
		}
		if dec.InputOffset() >= offset {
			return render()
		}
		if top >= 0 && !stack[top].array {
			stack[top].wantsKey = true
		}
	}
}
