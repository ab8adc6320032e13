/**
 * The module's settings as a call gets them: the flags it was given, over the repository's settings file
 * (vps-pipeline.yml), over the defaults (core/settings/settings.ts); the compose file found when none is named;
 * the module's own repository refused as a source unless asked for.
 */
import type { Directory, File, Secret } from "@dagger.io/dagger";
import { PipelineError } from "../core/errors.js";
import { findComposeFile } from "../core/settings/compose-file-search.js";
import { SETTINGS_FILE, parseSettingsFile, settle, type Origin, type SettingsFile } from "../core/settings/settings.js";
import type { StackSettings } from "../build/stack.js";

/** A file only this module's own repository has at its root: how a source is told to be ours (never by a name). */
export const MODULE_MARK = ".vps-pipeline-module";

/** The module's arguments as given: null or undefined where the command line left one out. */
export interface GivenStack {
  source: Directory;
  composeFile?: string | null | undefined;
  imagePrefix?: string | null | undefined;
  registry?: string | null | undefined;
  registryUser?: string | null | undefined;
  registryToken?: Secret | null | undefined;
  platforms?: string[] | null | undefined;
  settings?: File | null | undefined;
  allowModuleRepository?: boolean | null | undefined;
}

export interface SettledStack {
  stack: StackSettings;
  file: SettingsFile | undefined;
  /** The file was the source's own vps-pipeline.yml, not one given with --settings. */
  fileFromSource: boolean;
  from: Record<string, Origin>;
}

/** The source's root entries, without the trailing `/` the engine gives a folder. */
async function rootEntries(source: Directory): Promise<Set<string>> {
  return new Set((await source.entries()).map((e) => e.replace(/\/$/, "")));
}

/** The source's root, refused when it is this module's own repository and that was not asked for. */
async function checkedRoot(g: GivenStack): Promise<Set<string>> {
  const root = await rootEntries(g.source);
  if (root.has(MODULE_MARK) && !g.allowModuleRepository)
    throw new PipelineError(
      "SOURCE_IS_MODULE",
      "source: is vps-pipeline's own repository (the module's default source when it is loaded from GitHub), not your application's",
      "pass --source=. (your repository's checkout) to the module; only the module's own demo passes --allow-module-repository",
    );
  return root;
}

/** The compose file among the root's entries (and this repository's `compose/` folder). */
async function foundComposeFile(source: Directory, root: Set<string>): Promise<string> {
  const nested = root.has("compose") ? new Set(await source.glob("compose/*")) : new Set<string>();
  return findComposeFile((p) => root.has(p) || nested.has(p));
}

/** --settings when given, else the source's own vps-pipeline.yml when it has one. */
async function settingsFile(source: Directory, root: Set<string>, given: File | null | undefined) {
  if (given) {
    const [name, text] = await Promise.all([given.name(), given.contents()]);
    return parseSettingsFile(text, `--settings (${name})`);
  }
  if (!root.has(SETTINGS_FILE)) return undefined;
  return parseSettingsFile(await source.file(SETTINGS_FILE).contents(), SETTINGS_FILE);
}

/** The module's settings for this call: the source checked, the settings file read, the compose file found. */
export async function settledStack(g: GivenStack): Promise<SettledStack> {
  const root = await checkedRoot(g);
  const file = await settingsFile(g.source, root, g.settings);
  const m = settle("module", g as unknown as Record<string, unknown>, file);
  let composeFile = m.values.composeFile as string | undefined;
  if (composeFile === undefined) {
    composeFile = await foundComposeFile(g.source, root);
    m.from.composeFile = "found";
  }
  return {
    stack: {
      source: g.source,
      composeFile,
      imagePrefix: m.values.imagePrefix as string,
      registry: m.values.registry as string,
      registryUser: m.values.registryUser as string,
      ...(g.registryToken ? { registryToken: g.registryToken } : {}),
      platforms: m.values.platforms as string[],
    },
    file,
    fileFromSource: file !== undefined && !g.settings,
    from: m.from,
  };
}

export { formatOrigins } from "../core/settings/settings.js";

/** The server's settings of `vps(...)` (the non-secret ones), settled like the module's, with the same file. */
export function settledVps(given: Readonly<Record<string, unknown>>, file: SettingsFile | undefined) {
  return settle("vps", given, file);
}

/** What `init` starts from: the source checked as every call checks it, its compose file found, its files listed. */
export async function initSource(
  g: GivenStack,
): Promise<{ composeFile: string; exists: (path: string) => Promise<boolean> }> {
  const root = await checkedRoot(g);
  const composeFile = g.composeFile || (await foundComposeFile(g.source, root));
  return {
    composeFile,
    exists: async (path) => (await g.source.glob(path)).length > 0,
  };
}
