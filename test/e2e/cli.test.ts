import { existsSync } from 'node:fs';
import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ResumeState } from '../../cli/partial-file.ts';
import { LOCAL_CREDENTIALS } from '../../local/s3.ts';
import { buildCli, cliEnvironment, runCli, startCli, startCountingProxy } from '../helpers/cli.ts';
import { getJson } from '../helpers/http.ts';
import { type RunningStack, startStack } from '../helpers/local-stack.ts';
import { expectedSampleSha256, sha256OfStream } from '../helpers/sample-bytes.ts';

const MB = 1_000_000;
const REGION = 'us-east-1';
let iam: RunningStack;
let openStack: RunningStack;
let work: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'large-download-cli-'));
  [iam, openStack] = await Promise.all([
    // As deployed: SigV4 required. A 20 MB router threshold sends 60 MB the async way; presigned
    // URLs that live 4 s expire in the middle of a throttled download.
    startStack({
      LOCAL_AUTH: 'iam',
      AWS_REGION: REGION,
      STREAM_MAX_BYTES: String(20 * MB),
      PRESIGN_TTL_SECONDS: '4',
    }),
    // The default: open, 190 MiB threshold.
    startStack({ AWS_REGION: REGION }),
    buildCli(),
  ]);
});

afterAll(async () => {
  await Promise.all([iam?.stop(), openStack?.stop()]);
  if (work) await rm(work, { recursive: true, force: true });
});

/** A CLI run against the IAM stack with the local credentials in the environment. */
function signedEnv(extra: Record<string, string> = {}) {
  return cliEnvironment(work, {
    LARGE_DOWNLOAD_API: iam.endpoints.restApi,
    AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
    AWS_REGION: REGION,
    ...extra,
  });
}

async function fileSha256(path: string): Promise<string> {
  const handle = await open(path);
  try {
    return (await sha256OfStream(handle.createReadStream())).sha256;
  } finally {
    await handle.close();
  }
}

function bytesIn(state: ResumeState): number {
  return state.done.reduce((sum, [start, end]) => sum + end - start, 0);
}

async function readState(path: string): Promise<ResumeState> {
  return JSON.parse(await readFile(`${path}.part.json`, 'utf8')) as ResumeState;
}

/** Megabytes in a non-TTY `download: 12.3 MB / 60.0 MB (20%) …` line, if it is one. */
function downloadedMegabytes(line: string): number | undefined {
  const match = /^download: ([\d.]+) MB \/ 60\.0 MB/.exec(line);
  return match ? Number(match[1]) : undefined;
}

describe('large-download --help', () => {
  it('documents the commands, the options and every exit code', async () => {
    const { code, stdout } = await runCli(['--help'], { cwd: work, env: cliEnvironment(work) });
    expect(code).toBe(0);
    for (const text of ['get [options] <key>', 'status [options] <download>', '--api <url>', '--no-sign']) {
      expect(stdout).toContain(text);
    }
    for (const code of [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 130])
      expect(stdout).toMatch(new RegExp(`^ +${code}  `, 'm'));
    const get = await runCli(['get', '--help'], { cwd: work, env: cliEnvironment(work) });
    for (const text of ['--connections <n>', '--mode <mode>', '--limit-rate <rate>', '-o, --output <file>']) {
      expect(get.stdout).toContain(text);
    }
  });
});

describe('large-download against the local stack with LOCAL_AUTH=iam, signed with the local credentials', () => {
  it('downloads a file above the router threshold the async way: copy progress, download progress, right bytes', async () => {
    const output = join(work, 'async.bin');

    const { code, stdout, stderr } = await runCli(['get', 'sample/60MB', '-o', output], {
      cwd: work,
      env: signedEnv(),
    });

    expect(code, stderr).toBe(0);
    expect(stdout).toMatch(/copies sample\/60MB to S3 first \(too-large-to-stream\)/);
    expect(stdout).toMatch(/^copy: started$/m);
    expect(stdout).toMatch(/^copy: in S3, 60\.0 MB/m);
    expect(stdout).toMatch(/^download: started$/m);
    expect(stdout).toMatch(/^download: done, 60\.0 MB/m);
    expect(stdout.indexOf('copy: in S3')).toBeLessThan(stdout.indexOf('download: started'));
    // The ready message carries the object's CRC64NVME: the CLI checks it over the saved bytes.
    expect(stdout).toContain(
      `saved ${output}: 60000000 bytes, size and crc64nvme verified; 60000000 bytes transferred this run`,
    );
    expect(await fileSha256(output)).toBe(expectedSampleSha256('60MB'));
    expect(existsSync(`${output}.part`) || existsSync(`${output}.part.json`)).toBe(false);
  });

  it('resumes after Ctrl-C: the next run fetches only the missing bytes from S3, with a fresh URL', async () => {
    const output = join(work, 'resumed.bin');
    // Two connections at 6 MB/s: parts of 15 MB, so the third part starts after the 4 s URL expired.
    const first = startCli(['get', 'sample/60MB', '-o', output, '--connections', '2', '--limit-rate', '6M'], {
      cwd: work,
      env: signedEnv(),
    });
    await first.waitForLine((line) => {
      const megabytes = downloadedMegabytes(line);
      return megabytes !== undefined && megabytes >= 33 ? megabytes : undefined;
    }, 60_000);
    first.child.kill('SIGINT');
    const interrupted = await first.exited;

    expect(interrupted.code, first.stderr()).toBe(130);
    expect(first.stderr()).toContain('interrupted (SIGINT)');
    expect(first.stdout()).toMatch(
      /S3 refused the download URL \(AccessDenied: Request has expired\): asking the status URL for a fresh one/,
    );
    const state = await readState(output);
    const kept = bytesIn(state);
    expect(first.stdout()).toContain(`stopped ${kept} of 60000000 bytes in ${output}.part`);
    expect(kept).toBeGreaterThan(30 * MB);
    expect(kept).toBeLessThan(60 * MB);
    expect(state).toMatchObject({ key: 'sample/60MB', source: 'async', size: 60 * MB });
    // The status URL is kept exactly as the 202 gave it (with its token), to be polled again.
    expect(state.statusUrl).toMatch(new RegExp(`^${iam.endpoints.restApi}/downloads/${state.downloadId}\\?`));

    const proxy = await startCountingProxy();
    try {
      const second = await runCli(['get', 'sample/60MB', '-o', output], {
        cwd: work,
        env: signedEnv({ HTTP_PROXY: proxy.url }),
      });

      expect(second.code, second.stderr).toBe(0);
      const resumed = /^resuming at byte (\d+): (\d+) of 60000000 bytes/m.exec(second.stdout);
      expect(resumed, second.stdout).not.toBeNull();
      expect(Number(resumed?.[1])).toBeGreaterThan(0);
      expect(Number(resumed?.[2])).toBe(kept);
      expect(second.stdout).toContain(`${60 * MB - kept} bytes transferred this run`);
      // What S3 itself served, counted outside the CLI: the missing bytes plus response headers.
      const fromS3 = proxy.bytesFrom(new URL(iam.endpoints.s3 as string).host);
      expect(fromS3).toBeGreaterThanOrEqual(60 * MB - kept);
      expect(fromS3).toBeLessThan(60 * MB - kept + 64 * 1024);
      expect(await fileSha256(output)).toBe(expectedSampleSha256('60MB'));
      expect(existsSync(`${output}.part.json`)).toBe(false);
    } finally {
      await proxy.close();
    }
  });

  it('fetches again, never stitches, when the partial download is of another version (ETag)', async () => {
    const output = join(work, 'changed.bin');
    const first = startCli(['get', 'sample/60MB', '-o', output, '--limit-rate', '4M'], {
      cwd: work,
      env: signedEnv(),
    });
    await first.waitForLine((line) => ((downloadedMegabytes(line) ?? 0) >= 2 ? true : undefined), 60_000);
    first.child.kill('SIGINT');
    expect((await first.exited).code).toBe(130);
    // Prepare: the bytes on disk belong to another version of the file.
    const state = await readState(output);
    const part = await open(`${output}.part`, 'r+');
    for (const [start, end] of state.done)
      await part.write(Buffer.alloc(end - start, 0xee), 0, end - start, start);
    await part.close();
    await writeFile(`${output}.part.json`, JSON.stringify({ ...state, etag: '"another-version"' }));

    const second = await runCli(['get', 'sample/60MB', '-o', output], { cwd: work, env: signedEnv() });

    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toMatch(
      /the file changed since the partial download \(the ETag changed \("another-version" → "[^"]+"\)\): starting over/,
    );
    expect(second.stdout).toContain('60000000 bytes transferred this run');
    expect(await fileSha256(output)).toBe(expectedSampleSha256('60MB'));
  });

  it('resumes a streamed download through /stream with Range after Ctrl-C', async () => {
    const output = join(work, 'streamed.bin');
    // Upstream sends 8 MB/s (query parameters go upstream), so the stream is still running when stopped.
    const key = 'sample/20MB?rate=8000000';
    const first = startCli(['get', key, '-o', output], { cwd: work, env: signedEnv() });
    await first.waitForLine((line) => {
      const match = /^download: ([\d.]+) MB \/ 20\.0 MB/.exec(line);
      return match && Number(match[1]) >= 2 ? true : undefined;
    }, 60_000);
    first.child.kill('SIGINT');
    expect((await first.exited).code, first.stderr()).toBe(130);
    const state = await readState(output);
    const kept = bytesIn(state);
    expect(kept).toBeGreaterThanOrEqual(2 * MB);
    expect(kept).toBeLessThan(20 * MB);
    expect(state).toMatchObject({
      source: 'stream',
      etag: '"sample-20000000"',
      size: 20 * MB,
      done: [[0, kept]],
    });

    const second = await runCli(['get', key, '-o', output], { cwd: work, env: signedEnv() });

    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toContain(`resuming at byte ${kept}: ${kept} of 20000000 bytes`);
    expect(second.stdout).toContain('the rest from /stream/sample/20MB (Range, If-Range: "sample-20000000")');
    expect(second.stdout).toContain(`${20 * MB - kept} bytes transferred this run`);
    expect(await fileSha256(output)).toBe(expectedSampleSha256('20MB'));
  });

  it('gives up on a stream that upstream keeps breaking: exit 5 and what happened, after resuming each time', async () => {
    const output = join(work, 'broken.bin');

    const { code, stdout, stderr } = await runCli(
      ['get', 'sample/20MB?failAfter=1000000', '--mode', 'stream', '-o', output],
      { cwd: work, env: signedEnv() },
    );

    expect(code).toBe(5);
    const breaks = [
      ...stdout.matchAll(
        /the transfer broke off at byte (\d+) of 20000000 \(.+\); resuming in \d+s \(retry (\d)\/3\)/g,
      ),
    ];
    expect(breaks.map((match) => match[2])).toEqual(['1', '2', '3']);
    // Each retry asked for the rest (Range), so every break happened further in.
    const offsets = breaks.map((match) => Number(match[1]));
    expect(offsets[1]).toBeGreaterThanOrEqual(offsets[0] ?? 0);
    expect(offsets[2]).toBeGreaterThanOrEqual(offsets[1] ?? 0);
    expect(stderr).toMatch(
      /^large-download: the transfer from the API broke off at byte \d+ of 20000000, 4 times$/m,
    );
    expect(stderr).toContain('Run the same command again to resume.');
  });

  it("exits 5 when upstream's bytes do not match its Repr-Digest (ChecksumMismatch), and keeps no file", async () => {
    const output = join(work, 'bad-digest.bin');

    const { code, stderr } = await runCli(['get', 'sample/30MB?digest=bad', '-o', output], {
      cwd: work,
      env: signedEnv(),
    });

    expect(code, stderr).toBe(5);
    expect(stderr).toContain('ChecksumMismatch');
    expect(existsSync(output)).toBe(false);
  });

  it('exits 3 for a key upstream does not have, with the problem title and detail, and leaves no files', async () => {
    const output = join(work, 'missing.bin');

    const { code, stderr } = await runCli(['get', 'missing/file.bin', '-o', output], {
      cwd: work,
      env: signedEnv(),
    });

    expect(code).toBe(3);
    expect(stderr).toContain('large-download: Not Found (404 UpstreamNotFound)');
    expect(stderr).toContain('Upstream has no file at this key');
    expect(existsSync(`${output}.part`) || existsSync(`${output}.part.json`)).toBe(false);
  });

  it('exits 8 with the gateway message when requests are not signed or badly signed', async () => {
    const args = ['get', 'sample/1MB', '-o', join(work, 'denied.bin')];

    const noCredentials = await runCli(args, {
      cwd: work,
      env: cliEnvironment(work, { LARGE_DOWNLOAD_API: iam.endpoints.restApi }),
    });
    const noSign = await runCli(['--no-sign', ...args], { cwd: work, env: signedEnv() });
    const wrongSecret = await runCli(args, {
      cwd: work,
      env: signedEnv({ AWS_SECRET_ACCESS_KEY: 'not-the-secret' }),
    });

    expect(noCredentials.code).toBe(8);
    expect(noCredentials.stderr).toContain('Missing Authentication Token (403)');
    expect(noCredentials.stderr).toContain('no AWS credentials were found');
    expect(noSign.code).toBe(8);
    expect(noSign.stderr).toContain('Missing Authentication Token (403)');
    expect(noSign.stderr).toContain('signing is off (--no-sign)');
    expect(wrongSecret.code).toBe(8);
    expect(wrongSecret.stderr).toContain(
      'The request signature we calculated does not match the signature you provided',
    );
  });
});

describe('large-download against the default, open local stack', () => {
  it('streams sample/150MB without credentials: exit 0, the right bytes, no copy to S3', async () => {
    const { code, stdout, stderr } = await runCli(['get', 'sample/150MB'], {
      cwd: work,
      env: cliEnvironment(work, { LARGE_DOWNLOAD_API: openStack.endpoints.restApi }),
    });

    expect(code, stderr).toBe(0);
    expect(stdout).not.toContain('copy:');
    expect(stdout).toContain(`saved ${join(work, '150MB')}: 150000000 bytes, size verified`);
    expect(await fileSha256(join(work, '150MB'))).toBe(expectedSampleSha256('150MB'));
  });

  it('prints a status from its status URL, and exits 8 for a bare id without the token', async () => {
    const accepted = await getJson(`${openStack.endpoints.restApi}/download/sample/4MB?mode=async`);
    expect(accepted.status).toBe(202);
    const env = cliEnvironment(work, { LARGE_DOWNLOAD_API: openStack.endpoints.restApi });

    const withUrl = await runCli(['status', accepted.json.statusUrl as string], { cwd: work, env });
    const bareId = await runCli(['status', accepted.json.downloadId as string], { cwd: work, env });

    expect(withUrl.code, withUrl.stderr).toBe(0);
    expect(withUrl.stdout).toMatch(new RegExp(`^download +${accepted.json.downloadId}$`, 'm'));
    expect(withUrl.stdout).toMatch(/^status +(PENDING|RUNNING|READY)$/m);
    expect(withUrl.stdout).toMatch(/^key +sample\/4MB/m);
    expect(bareId.code).toBe(8);
    expect(bareId.stderr).toMatch(/\(401 DownloadTokenRequired\)/);
  });
});
