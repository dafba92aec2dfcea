import { createHash, randomBytes } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { type BuildOptions, build, version as esbuildVersion, type Metafile } from 'esbuild';
import {
  FUNCTION_BUNDLING,
  type FunctionBundling,
  type FunctionFolder,
  handlerEntry,
  REPO_ROOT,
} from '../infra/functions.ts';

/** Where `bundleFunction` keeps its bundles unless told otherwise (git- and Biome-ignored). */
export const DEFAULT_BUNDLE_CACHE_DIR = path.join(REPO_ROOT, '.local', 'bundles');

/** A bundled function, laid out as CDK's asset is: `<dir>/index.mjs` and its source map. */
export interface FunctionBundle {
  /** The bundle's directory: the runtime's `LAMBDA_TASK_ROOT`. */
  dir: string;
  /** The runtime's `_HANDLER` for it, the value CDK gives the function: `index.handler`. */
  handler: string;
  /** True when an earlier bundle of the same inputs and options was reused. */
  cached: boolean;
}

/**
 * The esbuild options that CDK's `NodejsFunction` (aws-cdk-lib 2.27x, local bundling) runs for
 * `bundling`: it calls the esbuild CLI from the project root as
 * `esbuild --bundle <entry> --target=… --platform=node --format=… --outfile=<out>/index.mjs
 * [--minify] [--sourcemap] [--external:…] [--banner:js=…] [--main-fields=…]`
 * (`Bundling.buildEsbuildArgs` in `aws-lambda-nodejs/lib/bundling.js`).
 */
export function toEsbuildOptions(bundling: FunctionBundling, entry: string, outDir: string): BuildOptions {
  const { minify, sourceMap, format, target, mainFields, banner, bundleAwsSDK, ...others } = bundling;
  const untranslated = Object.keys(others);
  if (untranslated.length > 0) {
    throw new Error(`local/bundle.ts does not translate the bundling option(s) ${untranslated.join(', ')}`);
  }
  const esm = format === OutputFormat.ESM;
  return {
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    target,
    format: esm ? 'esm' : 'cjs',
    outfile: path.join(outDir, esm ? 'index.mjs' : 'index.js'),
    minify,
    // `--sourcemap` without a value: a linked `index.mjs.map`, sources content included.
    sourcemap: sourceMap,
    // Without bundleAwsSDK, CDK leaves out what the runtime ships: `@aws-sdk/*` (and `@smithy/*`
    // behind a feature flag this app does not set).
    external: bundleAwsSDK ? [] : ['@aws-sdk/*'],
    banner: { js: banner },
    mainFields: [...mainFields],
    absWorkingDir: REPO_ROOT,
    logLevel: 'warning',
  };
}

/**
 * Bundles `functions/<folder>/handler.ts` in memory, with exactly the options of `bundleFunction`
 * (and so of `cdk synth`), and returns esbuild's metafile: every input with what it imports, and
 * how many bytes of each input the bundle kept (`outputs[…].inputs[…].bytesInOutput`).
 */
export async function functionMetafile(folder: FunctionFolder): Promise<Metafile> {
  const result = await build({
    ...toEsbuildOptions(FUNCTION_BUNDLING, handlerEntry(folder), path.join(REPO_ROOT, '.local', 'metafile')),
    metafile: true,
    write: false,
  });
  return result.metafile;
}

/** One input file as it was bundled; size and mtime spare re-reading unchanged files. */
interface InputFile {
  size: number;
  mtimeMs: number;
  sha256: string;
}

/** What a cached bundle was made from: input paths (relative to the repository) and their state. */
interface BundleManifest {
  dir: string;
  inputs: Record<string, InputFile>;
}

const sha256 = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');

async function describeInput(input: string): Promise<InputFile> {
  const file = path.join(REPO_ROOT, input);
  const { size, mtimeMs } = await stat(file);
  return { size, mtimeMs, sha256: sha256(await readFile(file)) };
}

/** True when every input still has the content it had when the bundle was made. */
async function inputsUnchanged(inputs: Record<string, InputFile>): Promise<boolean> {
  try {
    for (const [input, before] of Object.entries(inputs)) {
      // Synchronous stats: a thousand of them take a few milliseconds, awaited ones ten times more.
      const { size, mtimeMs } = statSync(path.join(REPO_ROOT, input));
      if (size === before.size && mtimeMs === before.mtimeMs) continue;
      if ((await describeInput(input)).sha256 !== before.sha256) return false;
    }
    return true;
  } catch {
    return false;
  }
}

async function readManifest(file: string): Promise<BundleManifest | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as BundleManifest;
  } catch {
    return undefined;
  }
}

const BUNDLE_KEEP_MS = 60 * 60 * 1000;

/** Removes this function's bundles other than `keep` that nobody wrote for an hour. */
async function pruneBundles(folderDir: string, keep: string): Promise<void> {
  const now = Date.now();
  for (const entry of await readdir(folderDir, { withFileTypes: true })) {
    if (!entry.isDirectory() || entry.name === keep) continue;
    const dir = path.join(folderDir, entry.name);
    const { mtimeMs } = await stat(dir).catch(() => ({ mtimeMs: now }));
    if (now - mtimeMs > BUNDLE_KEEP_MS) await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Bundles `functions/<folder>/handler.ts` with exactly the options the deployed function is
 * bundled with (`FUNCTION_BUNDLING`), into `<cacheDir>/<folder>/<key>/index.mjs` (+ `.map`).
 * A bundle is reused while the options, the esbuild version and every input file's content are
 * unchanged (checking takes milliseconds; a build about a second). Concurrent callers are safe:
 * each builds in a private directory and renames it into place.
 */
export async function bundleFunction(
  folder: FunctionFolder,
  options: { cacheDir?: string } = {},
): Promise<FunctionBundle> {
  const folderDir = path.join(options.cacheDir ?? DEFAULT_BUNDLE_CACHE_DIR, folder);
  const handler = 'index.handler';
  const optionsKey = sha256(
    JSON.stringify([esbuildVersion, toEsbuildOptions(FUNCTION_BUNDLING, handlerEntry(folder), '')]),
  ).slice(0, 16);
  const manifestFile = path.join(folderDir, `manifest-${optionsKey}.json`);

  const manifest = await readManifest(manifestFile);
  if (manifest && existsSync(path.join(folderDir, manifest.dir, 'index.mjs'))) {
    if (await inputsUnchanged(manifest.inputs)) {
      return { dir: path.join(folderDir, manifest.dir), handler, cached: true };
    }
  }

  await mkdir(folderDir, { recursive: true });
  const buildDir = path.join(folderDir, `.build-${randomBytes(6).toString('hex')}`);
  try {
    const result = await build({
      ...toEsbuildOptions(FUNCTION_BUNDLING, handlerEntry(folder), buildDir),
      metafile: true,
    });
    const inputs: Record<string, InputFile> = {};
    for (const input of Object.keys(result.metafile.inputs).sort())
      inputs[input] = await describeInput(input);
    const dir = sha256(
      JSON.stringify([optionsKey, Object.entries(inputs).map(([input, { sha256 }]) => [input, sha256])]),
    ).slice(0, 16);
    const finalDir = path.join(folderDir, dir);
    if (existsSync(finalDir)) {
      await rm(buildDir, { recursive: true, force: true });
    } else {
      await rename(buildDir, finalDir).catch(async (error: NodeJS.ErrnoException) => {
        // Another process renamed the same bundle into place first.
        if (error.code !== 'ENOTEMPTY' && error.code !== 'EEXIST') throw error;
        await rm(buildDir, { recursive: true, force: true });
      });
    }
    const manifestTmp = `${manifestFile}.${randomBytes(6).toString('hex')}`;
    await writeFile(manifestTmp, JSON.stringify({ dir, inputs } satisfies BundleManifest));
    await rename(manifestTmp, manifestFile);
    await pruneBundles(folderDir, dir);
    return { dir: finalDir, handler, cached: false };
  } catch (error) {
    await rm(buildDir, { recursive: true, force: true });
    throw error;
  }
}
