import { type LoadedPipeline, type LoadOptions, loadPipeline, readEnv } from "../config/load-pipeline.js";
import { loadProject, type Project } from "../config/project.js";
import type { CliIO } from "./io.js";

export async function projectFor(io: CliIO): Promise<Project> {
  return loadProject(io.projectDir ?? io.cwd, io.cwd);
}

export function load(io: CliIO, project: Project, name: string, opts: LoadOptions = {}): LoadedPipeline {
  return loadPipeline(project, name, readEnv(project, io.env), opts);
}
