/**
 * CRC-64/NVME, the checksum S3 calls `CRC64NVME` (reflected polynomial 0x9a6c9329ac4bc9b5, initial
 * value and final XOR all ones; check value of "123456789" is 0xae8b14860a799888).
 *
 * The running CRC is kept as two 32-bit halves so the hot loop stays in small-integer arithmetic
 * (BigInt per byte would be two orders of magnitude slower), consuming eight bytes per step through
 * eight lookup tables ("slicing-by-8"). `npx tsx bench/checksum-throughput.ts` measures it.
 */

/** The reflected CRC-64/NVME polynomial. */
const POLY = 0x9a6c9329ac4bc9b5n;
const MASK64 = 0xffffffffffffffffn;

/**
 * Eight tables of 256 entries, each entry split into [high 32 bits, low 32 bits]. Table k maps a
 * byte to the CRC contribution of that byte followed by k zero bytes.
 */
function buildTables(): Uint32Array[] {
  const tables: Uint32Array[] = [];
  const base: bigint[] = [];
  for (let i = 0; i < 256; i++) {
    let crc = BigInt(i);
    for (let bit = 0; bit < 8; bit++) crc = crc & 1n ? (crc >> 1n) ^ POLY : crc >> 1n;
    base.push(crc);
  }
  let current = base.slice();
  for (let slice = 0; slice < 8; slice++) {
    const table = new Uint32Array(512);
    for (let i = 0; i < 256; i++) {
      const value = current[i]!;
      table[i * 2] = Number(value >> 32n);
      table[i * 2 + 1] = Number(value & 0xffffffffn);
    }
    tables.push(table);
    // One more zero byte: shift the value out by eight bits through the base table.
    current = current.map((value) => (value >> 8n) ^ base[Number(value & 0xffn)]!);
  }
  return tables;
}

const [T0, T1, T2, T3, T4, T5, T6, T7] = buildTables() as [
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
];

/** Whether 32-bit typed arrays read bytes least significant first (x86-64 and arm64 do). */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
const EMPTY_WORDS = new Uint32Array(0);

/** Incremental CRC-64/NVME of a byte stream: `update` per chunk, `digest` at the end. */
export class Crc64Nvme {
  /** High and low 32 bits of the running (not yet inverted) CRC. */
  #high = 0xffffffff;
  #low = 0xffffffff;
  readonly #wordReads: boolean;

  /**
   * @param options.wordReads read 32-bit words (the default on little-endian machines, the only
   *   ones where it is right) or single bytes; tests compare both.
   */
  constructor(options: { wordReads?: boolean } = {}) {
    this.#wordReads = options.wordReads ?? LITTLE_ENDIAN;
  }

  /** Adds the bytes of `chunk` to the checksum. */
  update(chunk: Uint8Array): void {
    const length = chunk.length;
    let high = this.#high;
    let low = this.#low;
    let i = 0;
    if (this.#wordReads) {
      // Byte by byte up to a 4-byte boundary, then two 32-bit words per step: two loads instead
      // of eight (about 15% faster than reading bytes).
      while (i < length && ((chunk.byteOffset + i) & 3) !== 0) {
        const index = ((low ^ chunk[i]!) & 0xff) << 1;
        low = ((low >>> 8) | ((high & 0xff) << 24)) ^ T0[index + 1]!;
        high = (high >>> 8) ^ T0[index]!;
        i++;
      }
      const wordCount = ((length - i) >>> 3) << 1;
      // (A view must start at a multiple of 4, even an empty one: a short chunk may end unaligned.)
      const words =
        wordCount > 0 ? new Uint32Array(chunk.buffer, chunk.byteOffset + i, wordCount) : EMPTY_WORDS;
      for (let w = 0; w < words.length; w += 2) {
        const a = low ^ words[w]!;
        const b = high ^ words[w + 1]!;
        const i0 = (a & 0xff) << 1;
        const i1 = ((a >>> 8) & 0xff) << 1;
        const i2 = ((a >>> 16) & 0xff) << 1;
        const i3 = (a >>> 24) << 1;
        const i4 = (b & 0xff) << 1;
        const i5 = ((b >>> 8) & 0xff) << 1;
        const i6 = ((b >>> 16) & 0xff) << 1;
        const i7 = (b >>> 24) << 1;
        high = T7[i0]! ^ T6[i1]! ^ T5[i2]! ^ T4[i3]! ^ T3[i4]! ^ T2[i5]! ^ T1[i6]! ^ T0[i7]!;
        low =
          T7[i0 + 1]! ^
          T6[i1 + 1]! ^
          T5[i2 + 1]! ^
          T4[i3 + 1]! ^
          T3[i4 + 1]! ^
          T2[i5 + 1]! ^
          T1[i6 + 1]! ^
          T0[i7 + 1]!;
      }
      i += words.length << 2;
    } else {
      const end8 = length - ((length - i) % 8);
      while (i < end8) {
        const i0 = ((low ^ chunk[i]!) & 0xff) << 1;
        const i1 = (((low >>> 8) ^ chunk[i + 1]!) & 0xff) << 1;
        const i2 = (((low >>> 16) ^ chunk[i + 2]!) & 0xff) << 1;
        const i3 = ((low >>> 24) ^ chunk[i + 3]!) << 1;
        const i4 = ((high ^ chunk[i + 4]!) & 0xff) << 1;
        const i5 = (((high >>> 8) ^ chunk[i + 5]!) & 0xff) << 1;
        const i6 = (((high >>> 16) ^ chunk[i + 6]!) & 0xff) << 1;
        const i7 = ((high >>> 24) ^ chunk[i + 7]!) << 1;
        high = T7[i0]! ^ T6[i1]! ^ T5[i2]! ^ T4[i3]! ^ T3[i4]! ^ T2[i5]! ^ T1[i6]! ^ T0[i7]!;
        low =
          T7[i0 + 1]! ^
          T6[i1 + 1]! ^
          T5[i2 + 1]! ^
          T4[i3 + 1]! ^
          T3[i4 + 1]! ^
          T2[i5 + 1]! ^
          T1[i6 + 1]! ^
          T0[i7 + 1]!;
        i += 8;
      }
    }
    while (i < length) {
      const index = ((low ^ chunk[i]!) & 0xff) << 1;
      low = ((low >>> 8) | ((high & 0xff) << 24)) ^ T0[index + 1]!;
      high = (high >>> 8) ^ T0[index]!;
      i++;
    }
    this.#high = high >>> 0;
    this.#low = low >>> 0;
  }

  /** The CRC of every byte passed to `update` so far (the instance may keep taking bytes). */
  digest(): bigint {
    return (
      ((BigInt((this.#high ^ 0xffffffff) >>> 0) << 32n) | BigInt((this.#low ^ 0xffffffff) >>> 0)) & MASK64
    );
  }
}

/** The CRC-64/NVME of one buffer. */
export function crc64Nvme(bytes: Uint8Array): bigint {
  const crc = new Crc64Nvme();
  crc.update(bytes);
  return crc.digest();
}

/** `a · b mod P` in the reflected representation (bit 63 is x^0), as zlib's `multmodp`. */
function multiplyModP(a: bigint, b: bigint): bigint {
  let product = 0n;
  let m = 1n << 63n;
  let factor = b;
  while (m !== 0n) {
    if (a & m) {
      product ^= factor;
      if ((a & (m - 1n)) === 0n) break;
    }
    m >>= 1n;
    factor = factor & 1n ? (factor >> 1n) ^ POLY : factor >> 1n;
  }
  return product;
}

/** x^(2^k) mod P for k = 0…63 (x^1 is 1 << 62 in the reflected representation). */
const X_POW_2K: readonly bigint[] = (() => {
  const table: bigint[] = [];
  let p = 1n << 62n;
  for (let k = 0; k < 64; k++) {
    table.push(p);
    p = multiplyModP(p, p);
  }
  return table;
})();

/** Recently used x^(8·length) mod P: ranges and parts mostly share one length. */
const shiftCache = new Map<number, bigint>();

/** x^(bits) mod P, by squaring (zlib's `x2nmodp`). */
function xPowModP(bits: bigint): bigint {
  let p = 1n << 63n;
  let n = bits;
  let k = 0;
  while (n > 0n) {
    if (n & 1n) p = multiplyModP(X_POW_2K[k % 64]!, p);
    n >>= 1n;
    k++;
  }
  return p;
}

/**
 * The CRC-64/NVME of the concatenation A‖B from `first` = CRC(A), `second` = CRC(B) and the
 * length of B in bytes, without the bytes (the x^n mod P method of zlib's `crc32_combine`). This
 * is what lets ranges copied in parallel be checked as one object.
 */
export function combineCrc64Nvme(first: bigint, second: bigint, secondLength: number): bigint {
  if (!Number.isSafeInteger(secondLength) || secondLength < 0) {
    throw new RangeError(`secondLength must be a non-negative safe integer, got ${secondLength}`);
  }
  if (secondLength === 0) return first & MASK64;
  let shift = shiftCache.get(secondLength);
  if (shift === undefined) {
    shift = xPowModP(BigInt(secondLength) * 8n);
    if (shiftCache.size >= 64) shiftCache.clear();
    shiftCache.set(secondLength, shift);
  }
  return (multiplyModP(shift, first & MASK64) ^ second) & MASK64;
}

/** The 8 bytes of a CRC-64, big-endian. */
export function crc64NvmeToBytes(crc: bigint): Buffer {
  const bytes = Buffer.alloc(8);
  bytes.writeBigUInt64BE(crc & MASK64);
  return bytes;
}

/** The form S3 uses in `ChecksumCRC64NVME` and `x-amz-checksum-crc64nvme`: 8 bytes big-endian, base64. */
export function crc64NvmeToBase64(crc: bigint): string {
  return crc64NvmeToBytes(crc).toString('base64');
}

/** Parses the base64 form back to the CRC; `undefined` when it is not 8 bytes of base64. */
export function crc64NvmeFromBase64(value: string): bigint | undefined {
  if (!/^[A-Za-z0-9+/]{11}=$/.test(value)) return undefined;
  return Buffer.from(value, 'base64').readBigUInt64BE();
}
