package mapping

import "strconv"

// prescanThreshold is the message size above which Decode counts steps and
// their depth before decoding. Below it, decoding costs little even for a
// message over the limits, and validation finds it; above it, a message
// of a million tiny steps would cost seconds and hundreds of megabytes to
// decode before validation could refuse it.
const prescanThreshold = 64 << 10

// Frame flags of prescan's stack.
const (
	frameObject     = 1 << iota // an object (else an array)
	frameHolder                 // the root or a step: its "steps" key holds steps
	frameStepsArray             // the value of a holder's "steps" key
)

// prescan walks the message's bytes once and reports the first step limit
// it exceeds. It counts only the objects of "steps" arrays of the root and
// of steps, so a "steps" key inside input, output or metadata is not
// mistaken for a step. Malformed JSON is left to the decoder to report.
func prescan(data []byte, l Limits) *FieldError {
	var (
		stack     = make([]uint8, 0, 64)
		stepDepth int
		steps     int
		expectKey bool // the next string is an object key
		stepsKey  bool // the last key was "steps" in a holder
	)
	top := func() uint8 {
		if len(stack) == 0 {
			return 0
		}
		return stack[len(stack)-1]
	}
	for i := 0; i < len(data); i++ {
		switch c := data[i]; c {
		case '"':
			start := i + 1
			for i++; i < len(data) && data[i] != '"'; i++ {
				if data[i] == '\\' {
					i++
				}
			}
			if expectKey {
				stepsKey = top()&frameHolder != 0 && string(data[start:min(i, len(data))]) == "steps"
				expectKey = false
			}
		case ',':
			expectKey = top()&frameObject != 0
		case '{', '[':
			var f uint8
			if c == '{' {
				f = frameObject
				if len(stack) == 0 || top()&frameStepsArray != 0 {
					f |= frameHolder
					if len(stack) > 0 {
						if steps++; steps > l.MaxSteps {
							return &FieldError{Path: "steps", Msg: "more than the limit of " + strconv.Itoa(l.MaxSteps) + " steps", Err: ErrTooLarge}
						}
					}
				}
			} else if stepsKey {
				f = frameStepsArray
				if stepDepth++; stepDepth > l.MaxDepth {
					return &FieldError{Path: "steps", Msg: "nested deeper than the limit of " + strconv.Itoa(l.MaxDepth), Err: ErrTooLarge}
				}
			}
			stack = append(stack, f)
			stepsKey = false
			expectKey = c == '{'
		case '}', ']':
			if top()&frameStepsArray != 0 {
				stepDepth--
			}
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			stepsKey = false
		}
	}
	return nil
}
