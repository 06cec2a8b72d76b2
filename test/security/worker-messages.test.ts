// biome-ignore-all lint/suspicious/noTemplateCurlyInString: pipeline files use `${env.…}` templates
import { afterAll, expect, it } from "vitest";
import { compilePlan } from "../../src/compile/compile-plan.js";
import { loadPipelineText } from "../../src/config/load-pipeline.js";
import { makeProject } from "../../src/config/project.js";
import { StreamQuality } from "../../src/records/quality.js";
import { streamedInit } from "../../src/run/record-workers/streamed-main.js";
import { tempProject } from "../run/helpers.js";

/**
 * Attack class "secrets", the record workers' surface: what a stream's worker thread is sent
 * (src/run/record-workers/) holds its record plan only — no credential, header, query value or
 * URL that could carry a secret, whatever the pipeline puts there.
 */
const p = tempProject("pipelines-worker-messages-");
afterAll(() => p.cleanup());

it("a streamed stream's worker init carries no token, header, query secret or URL", () => {
  const env = {
    TOKEN: "tok-SECRET-1234567890",
    KEY: "key-SECRET-0987654321",
    QUERY: "qry-SECRET-5555555555",
  };
  const text = `
source:
  base_url: https://api.example.test/v1
  auth: { type: bearer, token: "\${env.TOKEN}" }
  headers: { X-Api-Key: "\${env.KEY}" }
  params: { signature: "\${env.QUERY}" }
streams:
  events:
    path: /export
    response: { format: jsonl }
    fields:
      id: $.id
      at: { path: $.time, type: date-time, from: epoch }
    filter: "@.id != 0"
`;
  const loaded = loadPipelineText(makeProject(p.dir, null, {}), "p", "pipelines/p.yaml", text, env);
  const plan = compilePlan(loaded);
  const stream = plan.streams[0];
  const validation = plan.validation;
  const quality = new StreamQuality(stream, validation);
  const init = streamedInit(
    stream,
    { runId: "r1", startedAt: "2024-01-01T00:00:00Z", pipeline: "p", stream: "events" },
    validation,
    quality.exportState(),
  );
  const sent = JSON.stringify(init);
  expect(sent).toContain("$.time"); // the plan is there…
  for (const secret of Object.values(env)) expect(sent).not.toContain(secret); // …the secrets are not
  expect(sent).not.toContain("api.example.test");
  expect(sent.toLowerCase()).not.toContain("x-api-key");
});
