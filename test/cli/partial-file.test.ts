import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PartialFile } from '../../cli/partial-file.ts';

const IDENTITY = { key: 'sample/60MB', api: 'http://127.0.0.1:3000/' };
let directory: string;
let output: string;

beforeEach(async () => {
  directory = await mkdtemp(join(tmpdir(), 'partial-'));
  output = join(directory, 'file.bin');
});

afterEach(async () => {
  await rm(directory, { recursive: true, force: true });
});

describe('PartialFile', () => {
  it('records the ranges written, the ETag and the status URL, and a new run resumes from them', async () => {
    const { file, previous } = await PartialFile.open(output, IDENTITY, { resume: true });
    expect(previous).toBeUndefined();
    await file.setSize(1000);
    file.facts.etag = '"abc"';
    file.facts.statusUrl = 'http://127.0.0.1:3000/downloads/id?token=secret';
    await file.write(Buffer.alloc(100, 1), 0);
    await file.write(Buffer.alloc(100, 2), 500);
    await file.close();

    const state = JSON.parse(await readFile(`${output}.part.json`, 'utf8'));
    expect(state).toMatchObject({
      ...IDENTITY,
      version: 1,
      etag: '"abc"',
      size: 1000,
      done: [
        [0, 100],
        [500, 600],
      ],
    });
    // The status URL carries the download's token: readable by its owner only.
    expect((await stat(`${output}.part.json`)).mode & 0o777).toBe(0o600);
    expect((await stat(`${output}.part`)).size).toBe(1000);

    const resumed = await PartialFile.open(output, IDENTITY, { resume: true });
    expect(resumed.previous?.statusUrl).toBe('http://127.0.0.1:3000/downloads/id?token=secret');
    expect(resumed.file.done.missing(1000)).toEqual([
      [100, 500],
      [600, 1000],
    ]);
    expect(resumed.file.written).toBe(0);
    await resumed.file.close();
  });

  it('starts over when the state belongs to another key or API, or with resume off', async () => {
    const { file } = await PartialFile.open(output, IDENTITY, { resume: true });
    await file.write(Buffer.alloc(10), 0);
    await file.close();

    const other = await PartialFile.open(output, { ...IDENTITY, key: 'sample/70MB' }, { resume: true });
    expect(other.previous).toBeUndefined();
    expect(other.discarded).toBe(true);
    expect(other.file.bytesDone).toBe(0);
    await other.file.write(Buffer.alloc(10), 0);
    await other.file.close();

    const fresh = await PartialFile.open(output, { ...IDENTITY, key: 'sample/70MB' }, { resume: false });
    expect(fresh.previous).toBeUndefined();
    expect(fresh.file.bytesDone).toBe(0);
    await fresh.file.close();
  });

  it('renames FILE.part to FILE and removes the state once complete', async () => {
    const { file } = await PartialFile.open(output, IDENTITY, { resume: true });
    await file.setSize(3);
    await file.write(Buffer.from('abc'), 0);
    await file.complete(output);
    expect(await readFile(output, 'utf8')).toBe('abc');
    expect(existsSync(`${output}.part`) || existsSync(`${output}.part.json`)).toBe(false);
  });

  it('refuses to share FILE.part with a running process, and takes over the lock of a dead one', async () => {
    await writeFile(`${output}.part.lock`, `${process.ppid}\n`);
    await expect(PartialFile.open(output, IDENTITY, { resume: true })).rejects.toThrow(
      `another large-download (process ${process.ppid}) is writing ${output}.part`,
    );

    await writeFile(`${output}.part.lock`, '2147483646\n');
    const { file } = await PartialFile.open(output, IDENTITY, { resume: true });
    expect((await readFile(`${output}.part.lock`, 'utf8')).trim()).toBe(String(process.pid));
    await file.close();
    expect(existsSync(`${output}.part.lock`)).toBe(false);
  });

  it('forgets every byte on reset (another version of the file is behind the URL)', async () => {
    const { file } = await PartialFile.open(output, IDENTITY, { resume: true });
    await file.setSize(10);
    file.facts.etag = '"v1"';
    await file.write(Buffer.alloc(10), 0);
    await file.reset();
    expect(file.bytesDone).toBe(0);
    expect(file.facts.etag).toBeUndefined();
    expect(file.facts.size).toBeUndefined();
    expect((await stat(`${output}.part`)).size).toBe(0);
    await file.close();
  });
});
