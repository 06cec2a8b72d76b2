import { existsSync } from "node:fs";
import path from "node:path";
import { ConfigError } from "../config/errors.js";
import { checkPipelineName, readEnv } from "../config/load-pipeline.js";
import { writeAtomic } from "../shared/atomic-write.js";
import { plural } from "../shared/format.js";
import { projectFor } from "./context.js";
import { type InitCredentials, initCredentials } from "./init/credentials.js";
import { fetchSample } from "./init/fetch-sample.js";
import { type Probe, probeResponse } from "./init/probe.js";
import { scaffold } from "./init/scaffold.js";
import { displayUrl, parseFromUrl, secretParam, shownFromUrlArg } from "./init/url-secrets.js";
import { CliError, type CliIO, EXIT } from "./io.js";

export { type Probe, probeResponse } from "./init/probe.js";

/** `pipelines init <name> [--from-url URL]`: a commented pipeline file, guessed from one request. */
export async function initCommand(
  io: CliIO,
  name: string,
  opts: { fromUrl?: string; force?: boolean; header?: string[]; bearerEnv?: string },
): Promise<number> {
  const bad = checkPipelineName(name);
  if (bad) throw new ConfigError([bad]);
  const file = await targetFile(io, name, opts.force === true);
  const creds = initCredentials(opts.header ?? [], opts.bearerEnv, readEnv(await projectFor(io), io.env));
  const text = opts.fromUrl
    ? await scaffoldFromUrl(io, name, opts.fromUrl, creds)
    : scaffold(name, null, null, creds);
  await writeAtomic(file, text, 0o644);
  io.stderr.write(`wrote ${path.relative(io.cwd, file)}\n`);
  io.stderr.write(
    `next: edit it, then \`pipelines validate ${name}\`, \`pipelines plan ${name}\`, \`pipelines run ${name} --max-pages 2\`\n`,
  );
  return EXIT.ok;
}

/** The file to write: `x.yaml` and `x.yml` are one pipeline, an existing one of either is (re)written. */
async function targetFile(io: CliIO, name: string, force: boolean): Promise<string> {
  const project = await projectFor(io);
  const existing = [".yaml", ".yml"]
    .map((ext) => path.join(project.pipelinesDir, `${name}${ext}`))
    .find((f) => existsSync(f));
  const file = existing ?? path.join(project.pipelinesDir, `${name}.yaml`);
  if (existing && !force)
    throw new CliError(
      `${path.relative(io.cwd, file)} already exists; use --force to overwrite`,
      EXIT.config,
    );
  return file;
}

/** One GET of the URL, a probe of its response, and the file filled in from it. */
async function scaffoldFromUrl(
  io: CliIO,
  name: string,
  fromUrl: string,
  creds: InitCredentials,
): Promise<string> {
  const url = parseFromUrl(fromUrl);
  if (!url)
    throw new CliError(
      `--from-url: expected an http(s) URL, found \`${shownFromUrlArg(fromUrl)}\``,
      EXIT.config,
    );
  const { body, headers } = await fetchSample(url, creds, io.signal);
  const probe: Probe = probeResponse(body, headers, url);
  const text = scaffold(name, url, probe, creds);
  const key = secretParam(url);
  if (key) {
    io.stderr.write(
      `the URL's \`${key.name}\` looks like a credential: it is not written to the file; the pipeline reads it from \`\${env.${key.env}}\` (set it in the environment or in .env)\n`,
    );
  }
  for (const note of creds.notes) io.stderr.write(`${note}\n`);
  io.stderr.write(
    `probed ${displayUrl(url)}: ${plural(probe.recordCount, "record")} at \`${probe.recordsPath}\`, pagination \`${probe.paginate}\`${probe.errorPath ? `, errors at \`${probe.errorPath}\`` : ""} — ${probe.confidence} confidence\n${probe.reasons.map((r) => `  - ${r}`).join("\n")}\n`,
  );
  return text;
}
