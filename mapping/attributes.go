package mapping

import "go.opentelemetry.io/otel/attribute"

// Attribute keys of CONTRACT §2, by convention family. They are part of the
// contract: dashboards and evaluations key on them.
const (
	// Traceloop (OpenLLMetry).
	AttrTraceloopSpanKind     = attribute.Key("traceloop.span.kind")
	AttrTraceloopEntityName   = attribute.Key("traceloop.entity.name")
	AttrTraceloopWorkflowName = attribute.Key("traceloop.workflow.name")
	AttrTraceloopEntityPath   = attribute.Key("traceloop.entity.path")
	AttrTraceloopEntityInput  = attribute.Key("traceloop.entity.input")
	AttrTraceloopEntityOutput = attribute.Key("traceloop.entity.output")

	// OpenTelemetry GenAI semantic conventions.
	AttrGenAIOperationName    = attribute.Key("gen_ai.operation.name")
	AttrGenAIRequestModel     = attribute.Key("gen_ai.request.model")
	AttrGenAIProviderName     = attribute.Key("gen_ai.provider.name")
	AttrGenAIUsageInputTokens = attribute.Key("gen_ai.usage.input_tokens")
	AttrGenAIUsageOutputToken = attribute.Key("gen_ai.usage.output_tokens")
	AttrGenAIUsageCost        = attribute.Key("gen_ai.usage.cost")

	// Keywords AI.
	AttrKeywordsAICustomer = attribute.Key("keywordsai.customer_params.customer_identifier")
	AttrKeywordsAIThread   = attribute.Key("keywordsai.threads.thread_identifier")
	// AttrKeywordsAIMetadataPrefix prefixes organization, experiment_id and
	// every metadata key.
	AttrKeywordsAIMetadataPrefix = "keywordsai.metadata."

	// spanferry's own.
	AttrResultID = attribute.Key("spanferry.result.id")
	AttrStepID   = attribute.Key("spanferry.step.id")
	AttrStepKind = attribute.Key("spanferry.step.kind")
	AttrStatus   = attribute.Key("spanferry.status")
)

// traceloop.span.kind values.
const (
	traceloopWorkflow = "workflow"
	traceloopTask     = "task"
	traceloopAgent    = "agent"
	traceloopTool     = "tool"
)

// gen_ai.operation.name values.
const (
	opInvokeWorkflow = "invoke_workflow"
	opChat           = "chat"
	opEmbeddings     = "embeddings"
	opExecuteTool    = "execute_tool"
	opInvokeAgent    = "invoke_agent"
)

// stepKinds maps a step kind to its traceloop.span.kind and
// gen_ai.operation.name (empty for none). Retriever, embedding and llm steps
// are Traceloop tasks (CONTRACT §2); a sub-workflow is a Traceloop workflow.
var stepKinds = map[string]struct{ traceloop, operation string }{
	KindTask:      {traceloopTask, ""},
	KindLLM:       {traceloopTask, opChat},
	KindTool:      {traceloopTool, opExecuteTool},
	KindAgent:     {traceloopAgent, opInvokeAgent},
	KindRetriever: {traceloopTask, ""},
	KindEmbedding: {traceloopTask, opEmbeddings},
	KindWorkflow:  {traceloopWorkflow, opInvokeWorkflow},
}
