package mapping

import "encoding/json"

// Result is a workflow result, the message of CONTRACT §1 (version 1).
// Unknown fields are ignored. Times are RFC 3339 strings and durations
// milliseconds, as backends send them; Decode checks them.
type Result struct {
	Version      json.Number `json:"version,omitempty"`
	ID           string      `json:"id"`
	TraceID      string      `json:"trace_id,omitempty"`
	Name         string      `json:"name"`
	Service      string      `json:"service,omitempty"`
	Organization string      `json:"organization,omitempty"`
	ExperimentID string      `json:"experiment_id,omitempty"`
	CustomerID   string      `json:"customer_id,omitempty"`
	ThreadID     string      `json:"thread_id,omitempty"`
	Execution
	Steps []Step `json:"steps,omitempty"`
}

// Step is one step of a workflow result, nested as the work nested.
type Step struct {
	ID       string   `json:"id,omitempty"`
	Name     string   `json:"name"`
	Kind     string   `json:"kind,omitempty"`
	SpanID   string   `json:"span_id,omitempty"`
	Model    string   `json:"model,omitempty"`
	Provider string   `json:"provider,omitempty"`
	Usage    *Usage   `json:"usage,omitempty"`
	Cost     *float64 `json:"cost,omitempty"`
	Execution
	Steps []Step `json:"steps,omitempty"`
}

// Execution holds what a result and each of its steps both say of how
// their work ran: timing, status, error, input, output and metadata. Its
// fields appear at the top level of the JSON object.
type Execution struct {
	StartedAt string                     `json:"started_at,omitempty"`
	EndedAt   string                     `json:"ended_at,omitempty"`
	LatencyMS *float64                   `json:"latency_ms,omitempty"`
	Status    string                     `json:"status,omitempty"`
	Error     *ErrorInfo                 `json:"error,omitempty"`
	Input     json.RawMessage            `json:"input,omitempty"`
	Output    json.RawMessage            `json:"output,omitempty"`
	Metadata  map[string]json.RawMessage `json:"metadata,omitempty"`
}

// ErrorInfo describes why a run or step failed.
type ErrorInfo struct {
	Type    string `json:"type,omitempty"`
	Message string `json:"message,omitempty"`
}

// Usage counts the tokens of a model call.
type Usage struct {
	InputTokens  *int64 `json:"input_tokens,omitempty"`
	OutputTokens *int64 `json:"output_tokens,omitempty"`
}

// Step kinds of CONTRACT §1. Any other kind is kept in spanferry.step.kind
// and mapped as KindTask.
const (
	KindTask      = "task"
	KindLLM       = "llm"
	KindTool      = "tool"
	KindAgent     = "agent"
	KindRetriever = "retriever"
	KindEmbedding = "embedding"
	KindWorkflow  = "workflow"
)

// Statuses with a meaning to the mapping; any other string is kept as given.
const (
	StatusCompleted = "completed"
	StatusFailed    = "failed"
	StatusError     = "error"
	StatusCancelled = "cancelled"
)
