import { execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** The page's own code and the client logic it shares with the CLI. */
const SOURCES = [join(ROOT, 'web'), join(ROOT, 'client')];
const BUILT = join(ROOT, 'dist/page/page.js');
const BUILD_SCRIPT = join(ROOT, 'scripts/build-page.mjs');

/** Newest modification time among `paths`, 0 when none exists. */
function newestChange(paths: readonly string[]): number {
  let newest = 0;
  for (const path of paths) {
    try {
      newest = Math.max(newest, statSync(path).mtimeMs);
    } catch {
      // Absent: nothing to compare.
    }
  }
  return newest;
}

/**
 * Builds the browser page (scripts/build-page.mjs) when dist/page is missing or older than web/,
 * client/ or the build script, so `npm start` serves the current page with no extra step. Runs before the
 * `page` function's module is imported: that module imports the build.
 */
export function ensurePageBuilt(log: (message: string) => void = () => {}): void {
  const sources = [
    BUILD_SCRIPT,
    ...SOURCES.flatMap((folder) => readdirSync(folder).map((name) => join(folder, name))),
  ];
  if (newestChange([BUILT]) >= newestChange(sources)) return;
  log('building the browser page (scripts/build-page.mjs)');
  execFileSync(process.execPath, [BUILD_SCRIPT], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
}
