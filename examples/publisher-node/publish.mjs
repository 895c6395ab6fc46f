// Publishes one workflow result to NATS JetStream, as a Node.js backend
// would when a run ends, with the official NATS clients:
//
//   npm ci && NATS_URL=nats://127.0.0.1:4222 node publish.mjs
//
// The result's "id" is sent as Nats-Msg-Id, so JetStream drops a result
// published twice (a retry after a lost ack, say).
import { connect } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";

const nc = await connect({ servers: process.env.NATS_URL ?? "nats://127.0.0.1:4222" });
const js = jetstream(nc);

const ended = new Date();
const result = {
  version: 1,
  id: process.env.RESULT_ID ?? `run_node_${ended.getTime()}`,
  name: "support-agent",
  service: "backend-node",
  started_at: new Date(ended.getTime() - 1500).toISOString(),
  ended_at: ended.toISOString(),
  input: { question: "where is my order?" },
  output: { answer: "it ships today" },
  steps: [
    { id: "s1", name: "retrieve", kind: "retriever", latency_ms: 120 },
    { id: "s2", name: "answer", kind: "llm", model: "gpt-4o", provider: "openai",
      usage: { input_tokens: 812, output_tokens: 64 }, cost: 0.00231, latency_ms: 900 },
  ],
};

const subject = process.env.SUBJECT ?? "workflows.results.support";
const ack = await js.publish(subject, JSON.stringify(result), { msgID: result.id });
console.log(`published ${result.id} to ${subject}: stream ${ack.stream}, seq ${ack.seq}${ack.duplicate ? " (duplicate)" : ""}`);
await nc.drain();
