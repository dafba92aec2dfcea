import { type FileHandle, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import type { Checksum } from '../client/download-status.ts';
import { CliError } from './errors.ts';
import { EXIT } from './exit-codes.ts';
import { type ByteRange, RangeSet } from './range-set.ts';

export type { Checksum };

/** Where the bytes come from: the streamed answer (`/stream`), or the S3 copy of an async download. */
export type DownloadSource = 'stream' | 'async';

/** What identifies a download across runs: the same key from the same API. */
export interface DownloadIdentity {
  key: string;
  api: string;
}

/** What the state file next to `FILE.part` records (JSON, `FILE.part.json`). */
export interface ResumeState extends DownloadIdentity {
  version: 1;
  source?: DownloadSource;
  downloadId?: string;
  /** As the 202 gave it, token and all: re-polled to get a freshly signed URL. */
  statusUrl?: string;
  webSocketUrl?: string;
  /** Size of the whole file, once known. */
  size?: number;
  /** ETag of the bytes already written; a different one means another file. */
  etag?: string;
  checksum?: Checksum;
  /** Byte ranges written to `FILE.part`, half-open `[start, end)`. */
  done: ByteRange[];
  updatedAt: string;
}

/** The mutable facts of a download that the state file keeps. */
export type DownloadFacts = Omit<ResumeState, 'version' | 'key' | 'api' | 'done' | 'updatedAt'>;

/** True while a process with this id runs (signal 0 only checks). */
function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes `FILE.part.lock` (holding this process's id), so that two runs never write the same
 * partial file. A lock whose process is gone (killed, crashed) is taken over.
 */
async function takeLock(lockPath: string): Promise<void> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(lockPath, `${process.pid}\n`, { flag: 'wx' });
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = Number((await readFile(lockPath, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && isRunning(holder)) {
        throw new CliError(
          EXIT.other,
          `another large-download (process ${holder}) is writing ${lockPath.replace(/\.lock$/, '')}`,
          'wait for it to finish, or stop it; a second run would write the same file',
        );
      }
      await rm(lockPath, { force: true });
    }
  }
  throw new CliError(EXIT.other, `cannot take ${lockPath}`);
}

function isResumeState(value: unknown, identity: DownloadIdentity): value is ResumeState {
  if (typeof value !== 'object' || value === null) return false;
  const state = value as Partial<ResumeState>;
  return (
    state.version === 1 &&
    state.key === identity.key &&
    state.api === identity.api &&
    Array.isArray(state.done) &&
    state.done.every(
      (range) =>
        Array.isArray(range) &&
        Number.isSafeInteger(range[0]) &&
        Number.isSafeInteger(range[1]) &&
        range[0] >= 0 &&
        range[1] >= range[0],
    )
  );
}

/**
 * The file being downloaded: `FILE.part`, written in place at any offset, and its state file
 * `FILE.part.json` recording which ranges are on disk, the ETag and size they belong to, and the
 * status URL that hands out fresh presigned URLs. A checkpoint flushes the data (`fdatasync`)
 * before it records the ranges, so the state never claims bytes a crash could lose. The final
 * name appears only when the whole file is there (`complete` renames).
 */
export class PartialFile {
  readonly partPath: string;
  readonly statePath: string;
  readonly lockPath: string;
  done: RangeSet;
  facts: DownloadFacts;
  /** Bytes written by this run (resumed bytes not counted). */
  written = 0;
  readonly #identity: DownloadIdentity;
  readonly #handle: FileHandle;
  #saving: Promise<void> = Promise.resolve();
  #closed = false;

  private constructor(
    outputPath: string,
    identity: DownloadIdentity,
    handle: FileHandle,
    saved: ResumeState | undefined,
  ) {
    this.partPath = `${outputPath}.part`;
    this.statePath = `${outputPath}.part.json`;
    this.lockPath = `${outputPath}.part.lock`;
    this.#identity = identity;
    this.#handle = handle;
    this.done = new RangeSet(saved?.done ?? []);
    const { version: _v, key: _k, api: _a, done: _d, updatedAt: _u, ...facts } = saved ?? ({} as ResumeState);
    this.facts = facts;
  }

  /**
   * Opens the partial download for `outputPath`: the one a previous run left (same key and API)
   * unless `resume` is false, else a new, empty one. `previous` is the state it resumes from.
   */
  static async open(
    outputPath: string,
    identity: DownloadIdentity,
    options: { resume: boolean },
  ): Promise<{ file: PartialFile; previous: ResumeState | undefined; discarded: boolean }> {
    const lockPath = `${outputPath}.part.lock`;
    await takeLock(lockPath);
    try {
      return await PartialFile.#openLocked(outputPath, identity, options);
    } catch (error) {
      await rm(lockPath, { force: true });
      throw error;
    }
  }

  static async #openLocked(
    outputPath: string,
    identity: DownloadIdentity,
    options: { resume: boolean },
  ): Promise<{ file: PartialFile; previous: ResumeState | undefined; discarded: boolean }> {
    const partPath = `${outputPath}.part`;
    const statePath = `${outputPath}.part.json`;
    let saved: ResumeState | undefined;
    let discarded = false;
    const raw = await readFile(statePath, 'utf8').catch(() => undefined);
    if (raw !== undefined) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(raw);
      } catch {
        parsed = undefined;
      }
      if (options.resume && isResumeState(parsed, identity)) saved = parsed;
      else discarded = true;
    }
    let handle: FileHandle | undefined;
    if (saved) handle = await open(partPath, 'r+').catch(() => undefined);
    if (!handle) {
      if (saved) discarded = true;
      saved = undefined;
      handle = await open(partPath, 'w+');
    }
    const file = new PartialFile(outputPath, identity, handle, saved);
    if (!saved) await file.checkpoint();
    return { file, previous: saved, discarded };
  }

  /** Bytes on disk. */
  get bytesDone(): number {
    return this.done.bytes;
  }

  /** Records the file's size and sizes `FILE.part` to it up front, so that parts land in place. */
  async setSize(size: number): Promise<void> {
    if (this.facts.size === size) return;
    this.facts.size = size;
    await this.#handle.truncate(size);
  }

  /** Writes `data` at `position` (all of it) and marks it present. */
  async write(data: Uint8Array, position: number): Promise<void> {
    let offset = 0;
    while (offset < data.length) {
      const { bytesWritten } = await this.#handle.write(
        data,
        offset,
        data.length - offset,
        position + offset,
      );
      offset += bytesWritten;
    }
    this.done.add(position, position + data.length);
    this.written += data.length;
  }

  /** Forgets every byte (another file is behind the URL now): empty file, no ETag, no size. */
  async reset(): Promise<void> {
    this.done = new RangeSet();
    this.facts.etag = undefined;
    this.facts.size = undefined;
    this.facts.checksum = undefined;
    await this.#handle.truncate(0);
    await this.checkpoint();
  }

  /** Flushes the data, then records the ranges on disk. Checkpoints run one at a time. */
  checkpoint(): Promise<void> {
    const next = this.#saving.then(async () => {
      if (this.#closed) return;
      const state: ResumeState = {
        version: 1,
        ...this.#identity,
        ...this.facts,
        done: this.done.toJSON(),
        updatedAt: new Date().toISOString(),
      };
      await this.#handle.datasync();
      const temporary = `${this.statePath}.tmp`;
      // The status URL carries the download's token: the state file is for this user only.
      await writeFile(temporary, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
      await rename(temporary, this.statePath);
    });
    this.#saving = next.catch(() => undefined);
    return next;
  }

  /** Saves the state and closes `FILE.part`, to be resumed by a later run. */
  async close(): Promise<void> {
    if (this.#closed) return;
    await this.checkpoint().catch(() => undefined);
    this.#closed = true;
    await this.#handle.close();
    await rm(this.lockPath, { force: true });
  }

  /** The download is complete and verified: `FILE.part` becomes `outputPath`, the state file goes. */
  async complete(outputPath: string): Promise<void> {
    await this.#saving;
    await this.#handle.datasync();
    this.#closed = true;
    await this.#handle.close();
    await rename(this.partPath, outputPath);
    await rm(this.statePath, { force: true });
    await rm(this.lockPath, { force: true });
  }

  /** Nothing worth resuming was written: removes `FILE.part` and its state. */
  async discard(): Promise<void> {
    await this.#saving;
    if (!this.#closed) {
      this.#closed = true;
      await this.#handle.close();
    }
    await rm(this.partPath, { force: true });
    await rm(this.statePath, { force: true });
    await rm(this.lockPath, { force: true });
  }

  /** Gives up on these bytes (verification failed): they stay in `FILE.part`, the next run starts over. */
  async abandon(): Promise<void> {
    await this.#saving;
    this.#closed = true;
    await this.#handle.close();
    await rm(this.statePath, { force: true });
    await rm(this.lockPath, { force: true });
  }

  /** Reads the file back, in order, for checksums. */
  async *read(chunkSize = 1024 * 1024): AsyncGenerator<Uint8Array> {
    const size = this.facts.size ?? this.done.contiguousEnd;
    const buffer = Buffer.allocUnsafe(chunkSize);
    for (let position = 0; position < size; ) {
      const { bytesRead } = await this.#handle.read(
        buffer,
        0,
        Math.min(chunkSize, size - position),
        position,
      );
      if (bytesRead === 0) break;
      yield buffer.subarray(0, bytesRead);
      position += bytesRead;
    }
  }

  /** The size of `FILE.part` on disk. */
  async diskSize(): Promise<number> {
    return (await this.#handle.stat()).size;
  }
}
