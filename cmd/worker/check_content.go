package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/spanferry/spanferry/internal/config"
	"github.com/spanferry/spanferry/mapping"
)

// maxShownContent is the most bytes of one value `check --show-content`
// prints: enough to judge a rule, not a megabyte of prompt.
const maxShownContent = 2000

// printControls says which content controls the tree is mapped with, so
// that a rule being tried is known to be in force.
func printControls(w io.Writer, cfg config.Config, m *mapping.Mapper) {
	capture := "captured"
	if !cfg.CaptureContent {
		capture = "not captured (WORKER_CAPTURE_CONTENT=false)"
	}
	red := "no redaction rules"
	if r := m.Redactor(); r != nil {
		red = fmt.Sprintf("%d redaction rules from %s (%s)", len(r.Rules()), cfg.RedactFile, strings.Join(r.Rules(), ", "))
	}
	fmt.Fprintf(w, "content: input and output %s; %s\n", capture, red)
}

// redactionSummary is ", N redactions (rule n, ...)" in the rules' order, or
// nothing when no rule replaced anything.
func redactionSummary(m *mapping.Mapper, st mapping.Stats) string {
	if len(st.Redactions) == 0 {
		return ""
	}
	total := 0
	var parts []string
	for _, rule := range m.Redactor().Rules() {
		if n := st.Redactions[rule]; n > 0 {
			total += n
			parts = append(parts, rule+" "+strconv.Itoa(n))
		}
	}
	return fmt.Sprintf(", %d redactions (%s)", total, strings.Join(parts, ", "))
}

// compactJSON compacts JSON text onto one line for the tree (the same JSON
// value as exported, without its layout).
func compactJSON(text string) string {
	var b bytes.Buffer
	if json.Compact(&b, []byte(text)) != nil {
		return strings.ReplaceAll(text, "\n", `\n`)
	}
	return b.String()
}

// printContent prints the content attributes of s as they would be
// exported: input, output, metadata and the exception message.
func printContent(w io.Writer, s sdktrace.ReadOnlySpan, indent string) {
	line := func(label, value string) {
		if len(value) > maxShownContent {
			value = value[:maxShownContent] + "… (" + strconv.Itoa(len(value)-maxShownContent) + " bytes more)"
		}
		fmt.Fprintf(w, "%s%s: %s\n", indent, label, value)
	}
	var metadata []string
	for _, kv := range s.Attributes() {
		switch k := string(kv.Key); {
		case kv.Key == mapping.AttrTraceloopEntityInput:
			line("input", compactJSON(kv.Value.AsString()))
		case kv.Key == mapping.AttrTraceloopEntityOutput:
			line("output", compactJSON(kv.Value.AsString()))
		case strings.HasPrefix(k, mapping.AttrKeywordsAIMetadataPrefix):
			metadata = append(metadata, strings.TrimPrefix(k, mapping.AttrKeywordsAIMetadataPrefix)+"="+kv.Value.Emit())
		}
	}
	if len(metadata) > 0 {
		line("metadata", strings.Join(metadata, " "))
	}
	for _, e := range s.Events() {
		for _, kv := range e.Attributes {
			if kv.Key == semconv.ExceptionMessageKey && kv.Value.AsString() != "" {
				line("error", kv.Value.AsString())
			}
		}
	}
}
