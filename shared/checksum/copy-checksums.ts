import {
  type CompletedPart,
  CompleteMultipartUploadCommand,
  type CompleteMultipartUploadCommandInput,
  CreateMultipartUploadCommand,
  type CreateMultipartUploadCommandInput,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand,
  type UploadPartCommandInput,
} from '@aws-sdk/client-s3';
import type { AdvertisedDigest } from './advertised-digest.ts';
import { Crc64Nvme, combineCrc64Nvme, crc64NvmeToBase64 } from './crc64nvme.ts';
import { type ObjectChecksum, toObjectChecksum } from './object-checksum.ts';
import { createRunningDigest, type RunningDigest, verifyAdvertisedDigest } from './running-digest.ts';

export { type ObjectChecksum, toObjectChecksum } from './object-checksum.ts';

/**
 * The checksums of one copy, computed as the bytes stream past: the CRC64NVME of every S3 part
 * (parts are `partSize` bytes, the last one shorter, as lib-storage cuts them), the whole object's
 * CRC64NVME combined from them (no second pass over the bytes), and, when upstream announced a
 * digest of another algorithm, that one too.
 */
export class CopyChecksums {
  /** CRCs of the parts already full. */
  readonly #finishedParts: bigint[] = [];
  #currentPart = new Crc64Nvme();
  #currentLength = 0;
  #bytes = 0;
  readonly #advertisedDigest: RunningDigest | undefined;

  constructor(
    readonly partSize: number,
    /** Upstream's announced digest of the whole file, verified by `verify()`. */
    readonly advertised?: AdvertisedDigest,
  ) {
    if (!Number.isSafeInteger(partSize) || partSize <= 0) throw new RangeError(`bad part size ${partSize}`);
    if (advertised && advertised.algorithm !== 'CRC64NVME') {
      this.#advertisedDigest = createRunningDigest(advertised.algorithm);
    }
  }

  /** Bytes seen so far. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Adds the next bytes of the object. */
  update(chunk: Uint8Array): void {
    this.#advertisedDigest?.update(chunk);
    this.#bytes += chunk.length;
    let offset = 0;
    while (offset < chunk.length) {
      const room = this.partSize - this.#currentLength;
      const piece = chunk.subarray(offset, offset + room);
      this.#currentPart.update(piece);
      this.#currentLength += piece.length;
      offset += piece.length;
      if (this.#currentLength === this.partSize) {
        this.#finishedParts.push(this.#currentPart.digest());
        this.#currentPart = new Crc64Nvme();
        this.#currentLength = 0;
      }
    }
  }

  /**
   * The CRC64NVME (base64) of part `partNumber` (from 1). Final once the part's bytes have all
   * passed `update`, which is the case whenever lib-storage uploads it (it reads behind us).
   */
  partChecksum(partNumber: number): string {
    const finished = this.#finishedParts[partNumber - 1];
    if (finished !== undefined) return crc64NvmeToBase64(finished);
    if (partNumber === this.#finishedParts.length + 1) return crc64NvmeToBase64(this.#currentPart.digest());
    throw new RangeError(`part ${partNumber} has not started (${this.#finishedParts.length} parts full)`);
  }

  /** The CRC-64/NVME of all bytes so far. */
  objectCrc(): bigint {
    let crc = 0n;
    for (const part of this.#finishedParts) crc = combineCrc64Nvme(crc, part, this.partSize);
    return combineCrc64Nvme(crc, this.#currentPart.digest(), this.#currentLength);
  }

  /** The object's checksum, as stored on it in S3. */
  objectChecksum(): ObjectChecksum {
    return toObjectChecksum(this.objectCrc());
  }

  /**
   * Checks the bytes against upstream's announced digest, if any.
   *
   * @throws ChecksumMismatchError when they differ.
   */
  verify(): void {
    const { advertised } = this;
    if (!advertised) return;
    const computed = this.#advertisedDigest?.digestBase64() ?? crc64NvmeToBase64(this.objectCrc());
    verifyAdvertisedDigest(advertised, computed);
  }
}

/**
 * The request fields of S3's full-object CRC64NVME checksum on a multipart upload, one function per
 * request, shared by the single-stream copy (`withObjectChecksums`) and the parallel ranged copy:
 *
 * - `CreateMultipartUpload`: `ChecksumAlgorithm: CRC64NVME`, `ChecksumType: FULL_OBJECT`;
 * - `UploadPart`: the part's `ChecksumCRC64NVME`, sent as a header before the body (S3 checks each
 *   part; the SDK computes nothing and sends no trailer);
 * - `CompleteMultipartUpload`: each part's `ChecksumCRC64NVME`, the whole object's
 *   `ChecksumCRC64NVME` and `ChecksumType: FULL_OBJECT`, and `MpuObjectSize` (S3 checks them and
 *   fails the completion with `BadDigest` when they do not match what it received).
 *
 * Sources: S3 API reference, CreateMultipartUpload (`x-amz-checksum-type`), UploadPart,
 * CompleteMultipartUpload and CompletedPart (`ChecksumCRC64NVME`, `ChecksumType`, `MpuObjectSize`);
 * S3 User Guide, "Checking object integrity" (CRC64NVME supports only the full-object type).
 */
export function fullObjectChecksumUpload(): Pick<
  CreateMultipartUploadCommandInput,
  'ChecksumAlgorithm' | 'ChecksumType'
> {
  return { ChecksumAlgorithm: 'CRC64NVME', ChecksumType: 'FULL_OBJECT' };
}

/**
 * The fields of a request body (`UploadPart`, or `PutObject` of a whole object) whose CRC64NVME
 * (base64) is `checksum`; see {@link fullObjectChecksumUpload}.
 */
export function fullObjectChecksumBody(
  checksum: string,
): Pick<UploadPartCommandInput, 'ChecksumAlgorithm' | 'ChecksumCRC64NVME'> {
  return { ChecksumAlgorithm: 'CRC64NVME', ChecksumCRC64NVME: checksum };
}

/**
 * `command` (an `UploadPart` carrying its part's CRC64NVME, {@link fullObjectChecksumBody}) signed
 * without a hash of its body: `x-amz-content-sha256: UNSIGNED-PAYLOAD`, SigV4's unsigned-payload
 * option for a body sent in one piece. S3 checks the part against the CRC64NVME header, so the
 * SHA-256 that the SDK would otherwise compute of every part only cost CPU (about 0.8 s per GB
 * here); the request itself stays signed, and the connection to S3 is HTTPS.
 */
export function withUnsignedPayload<T extends UploadPartCommand>(command: T): T {
  command.middlewareStack.add(
    (next) => (args) => {
      const request = args.request as { headers?: Record<string, string> };
      if (request.headers) request.headers[CONTENT_SHA256_HEADER] = UNSIGNED_PAYLOAD;
      return next(args);
    },
    { step: 'build', name: 'unsignedPartPayload', override: true },
  );
  return command;
}

const CONTENT_SHA256_HEADER = 'x-amz-content-sha256';
const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';

/**
 * `CompleteMultipartUpload`'s fields: `parts` with each one's CRC64NVME from `partChecksum`, the
 * object's CRC64NVME (base64) and size; see {@link fullObjectChecksumUpload}.
 */
export function fullObjectChecksumCompletion(
  parts: readonly CompletedPart[],
  partChecksum: (partNumber: number) => string,
  object: { checksum: string; size: number },
): Pick<
  CompleteMultipartUploadCommandInput,
  'MultipartUpload' | 'ChecksumCRC64NVME' | 'ChecksumType' | 'MpuObjectSize'
> {
  return {
    MultipartUpload: {
      Parts: parts.map((part) => ({ ...part, ChecksumCRC64NVME: partChecksum(part.PartNumber ?? 0) })),
    },
    ChecksumCRC64NVME: object.checksum,
    ChecksumType: 'FULL_OBJECT',
    MpuObjectSize: object.size,
  };
}

/**
 * The S3 client an upload of these bytes goes through: the same client, with every request that
 * lib-storage's `Upload` sends given S3's full-object CRC64NVME checksum (the fields of
 * {@link fullObjectChecksumUpload} and the two functions after it), which lib-storage (3.1169)
 * cannot set by itself (its parameters go unchanged to every command, and it drops part CRC64NVME
 * values from `CompleteMultipartUpload`); a file smaller than one part goes up in one `PutObject`
 * with the object's `ChecksumCRC64NVME`.
 */
export function withObjectChecksums(s3: S3Client, checksums: CopyChecksums): S3Client {
  const send = (command: unknown, ...rest: unknown[]): Promise<unknown> => {
    if (command instanceof CreateMultipartUploadCommand) {
      Object.assign(command.input, fullObjectChecksumUpload());
    } else if (command instanceof UploadPartCommand) {
      Object.assign(
        command.input,
        fullObjectChecksumBody(checksums.partChecksum(command.input.PartNumber ?? 0)),
      );
      withUnsignedPayload(command);
    } else if (command instanceof CompleteMultipartUploadCommand) {
      const completion = fullObjectChecksumCompletion(
        command.input.MultipartUpload?.Parts ?? [],
        (partNumber) => checksums.partChecksum(partNumber),
        { checksum: checksums.objectChecksum().value, size: checksums.bytes },
      );
      Object.assign(command.input, {
        ...completion,
        MultipartUpload: { ...command.input.MultipartUpload, ...completion.MultipartUpload },
      });
    } else if (command instanceof PutObjectCommand) {
      Object.assign(command.input, fullObjectChecksumBody(checksums.objectChecksum().value));
    }
    return (s3.send as (...args: unknown[]) => Promise<unknown>)(command, ...rest);
  };
  return new Proxy(s3, {
    get(target, property) {
      if (property === 'send') return send;
      return Reflect.get(target, property, target);
    },
  });
}
