// Bundles the `large-download` CLI (cli/*.ts) into dist/large-download.js with esbuild, so that the
// package's `bin` runs on plain Node without tsx or TypeScript (devDependencies). Its runtime
// dependencies (commander, cli-progress, ws, undici, the AWS signing packages) stay external: they
// are `dependencies`, installed next to it. Run by `npm run build:cli` and by `prepare`, so `npm ci`
// and `npm i -g .` leave a working `large-download`. Without esbuild (a production install of an
// already built checkout) it says so and leaves dist/ as it is.
import { chmod } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const OUTFILE = 'dist/large-download.js';

let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  console.error(`build:cli: esbuild is not installed (a devDependency): ${OUTFILE} not rebuilt`);
  process.exit(0);
}

await esbuild.build({
  absWorkingDir: ROOT,
  entryPoints: ['cli/main.ts'],
  outfile: OUTFILE,
  bundle: true,
  platform: 'node',
  target: 'node20.18',
  format: 'esm',
  packages: 'external',
  sourcemap: 'linked',
  logLevel: 'warning',
});
await chmod(new URL(`../${OUTFILE}`, import.meta.url), 0o755);
