/**
 * CRC-64/NVME, the checksum S3 calls `CRC64NVME` (reflected polynomial 0x9a6c9329ac4bc9b5, initial
 * value and final XOR all ones; check value of "123456789" is 0xae8b14860a799888).
 *
 * The bytes go through a small WebAssembly function, assembled below from its opcodes (no build
 * step, no binary file): sixteen bytes per step through sixteen lookup tables of 64-bit entries
 * ("slicing-by-16"), which runs at about twice the speed of the same method in JavaScript, where
 * the 64-bit CRC has to be split into two 32-bit halves (BigInt per byte would be two orders of
 * magnitude slower). Each chunk is copied into the module's memory first, a memcpy. The copy steps
 * compute it over every byte they store, so its speed is CPU per GB on Lambda.
 * `npx tsx bench/checksum-throughput.ts` measures it.
 */

/** The reflected CRC-64/NVME polynomial. */
const POLY = 0x9a6c9329ac4bc9b5n;
const MASK64 = 0xffffffffffffffffn;

/** Bytes per step of the main loop, and so the number of tables. */
const SLICES = 16;
/** Sixteen tables of 256 64-bit entries at the start of the module's memory. */
const TABLES_BYTES = SLICES * 256 * 8;
/** Where chunks are copied to, after the tables, and how much of a chunk goes in per call. */
const SCRATCH_OFFSET = TABLES_BYTES;
const SCRATCH_BYTES = 1024 * 1024;
const WASM_PAGE_BYTES = 64 * 1024;

/** Unsigned and signed LEB128, WebAssembly's integer encodings. */
function unsignedLeb(value: number): number[] {
  const out: number[] = [];
  let rest = value;
  do {
    const low = rest & 0x7f;
    rest >>>= 7;
    out.push(rest === 0 ? low : low | 0x80);
  } while (rest !== 0);
  return out;
}
function signedLeb(value: number): number[] {
  const out: number[] = [];
  let rest = value;
  for (;;) {
    const low = rest & 0x7f;
    rest >>= 7;
    const done = (rest === 0 && (low & 0x40) === 0) || (rest === -1 && (low & 0x40) !== 0);
    out.push(done ? low : low | 0x80);
    if (done) return out;
  }
}

/** The opcodes the function uses (WebAssembly core specification, section 5.4). */
const OP = {
  block: 0x02,
  loop: 0x03,
  br: 0x0c,
  brIf: 0x0d,
  end: 0x0b,
  localGet: 0x20,
  localSet: 0x21,
  i64Load: 0x29,
  i64Load8U: 0x31,
  i32Const: 0x41,
  i64Const: 0x42,
  i32GeU: 0x4f,
  i32Add: 0x6a,
  i32And: 0x71,
  i32Shl: 0x74,
  i64Xor: 0x85,
  i64ShrU: 0x88,
  i32WrapI64: 0xa7,
} as const;
const VOID_BLOCK = 0x40;
const I32 = 0x7f;
const I64 = 0x7e;

/**
 * `update(crc: i64, pointer: i32, length: i32) -> i64`: the running (not inverted) CRC after the
 * `length` bytes at `pointer`. Locals: 3 and 6 the two words of a step, 4 where the 16-byte steps
 * end, 5 where the bytes end.
 */
function updateFunctionBody(): number[] {
  const [crc, pointer, length, word, stepsEnd, end, secondWord] = [0, 1, 2, 3, 4, 5, 6];
  const code: number[] = [];
  const emit = (...bytes: number[]) => code.push(...bytes);
  /** Pushes table[tableIndex][(local >> 8·byte) & 0xff]. */
  const lookup = (local: number, byte: number, tableIndex: number) => {
    emit(OP.localGet, local);
    if (byte > 0) emit(OP.i64Const, ...signedLeb(8 * byte), OP.i64ShrU);
    emit(OP.i32WrapI64, OP.i32Const, ...signedLeb(0xff), OP.i32And, OP.i32Const, 3, OP.i32Shl);
    emit(OP.i64Load, 3, ...unsignedLeb(tableIndex * 256 * 8));
  };
  emit(OP.localGet, pointer, OP.localGet, length, OP.i32Add, OP.localSet, end);
  emit(OP.localGet, pointer, OP.localGet, length, OP.i32Const, ...signedLeb(-SLICES), OP.i32And);
  emit(OP.i32Add, OP.localSet, stepsEnd);
  // Sixteen bytes per step: crc = T15[w0 byte 0] ^ … ^ T8[w0 byte 7] ^ T7[w1 byte 0] ^ … ^ T0[w1 byte 7],
  // where w0 = the first eight bytes ^ crc and w1 = the next eight (little-endian loads).
  emit(OP.block, VOID_BLOCK, OP.loop, VOID_BLOCK);
  emit(OP.localGet, pointer, OP.localGet, stepsEnd, OP.i32GeU, OP.brIf, 1);
  emit(OP.localGet, pointer, OP.i64Load, 0, 0, OP.localGet, crc, OP.i64Xor, OP.localSet, word);
  emit(OP.localGet, pointer, OP.i64Load, 0, 8, OP.localSet, secondWord);
  for (let byte = 0; byte < 8; byte++) {
    lookup(word, byte, SLICES - 1 - byte);
    if (byte > 0) emit(OP.i64Xor);
  }
  for (let byte = 0; byte < 8; byte++) {
    lookup(secondWord, byte, 7 - byte);
    emit(OP.i64Xor);
  }
  emit(OP.localSet, crc);
  emit(OP.localGet, pointer, OP.i32Const, SLICES, OP.i32Add, OP.localSet, pointer, OP.br, 0, OP.end, OP.end);
  // The last bytes one at a time: crc = T0[(crc ^ byte) & 0xff] ^ (crc >> 8).
  emit(OP.block, VOID_BLOCK, OP.loop, VOID_BLOCK);
  emit(OP.localGet, pointer, OP.localGet, end, OP.i32GeU, OP.brIf, 1);
  emit(OP.localGet, crc, OP.localGet, pointer, OP.i64Load8U, 0, 0, OP.i64Xor);
  emit(OP.i32WrapI64, OP.i32Const, ...signedLeb(0xff), OP.i32And, OP.i32Const, 3, OP.i32Shl);
  emit(OP.i64Load, 3, 0, OP.localGet, crc, OP.i64Const, 8, OP.i64ShrU, OP.i64Xor, OP.localSet, crc);
  emit(OP.localGet, pointer, OP.i32Const, 1, OP.i32Add, OP.localSet, pointer, OP.br, 0, OP.end, OP.end);
  emit(OP.localGet, crc, OP.end);
  // Local declarations: one i64 (3), two i32 (4, 5), one i64 (6).
  return [3, 1, I64, 2, I32, 1, I64, ...code];
}

/** The module: one function `update`, one memory `memory` holding the tables and the scratch space. */
function moduleBytes(): Uint8Array {
  const section = (id: number, content: number[]) => [id, ...unsignedLeb(content.length), ...content];
  const name = (text: string) => [...unsignedLeb(text.length), ...new TextEncoder().encode(text)];
  const body = updateFunctionBody();
  const pages = Math.ceil((TABLES_BYTES + SCRATCH_BYTES) / WASM_PAGE_BYTES);
  return Uint8Array.from([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, [1, 0x60, 3, I64, I32, I32, 1, I64]),
    ...section(3, [1, 0]),
    ...section(5, [1, 0, ...unsignedLeb(pages)]),
    ...section(7, [2, ...name('update'), 0, 0, ...name('memory'), 2, 0]),
    ...section(10, [1, ...unsignedLeb(body.length), ...body]),
  ]);
}

interface Kernel {
  update(crc: bigint, pointer: number, length: number): bigint;
  memory: Uint8Array;
}

/** Table k maps a byte to the CRC contribution of that byte followed by k zero bytes. */
function fillTables(tables: BigUint64Array): void {
  for (let i = 0; i < 256; i++) {
    let crc = BigInt(i);
    for (let bit = 0; bit < 8; bit++) crc = crc & 1n ? (crc >> 1n) ^ POLY : crc >> 1n;
    tables[i] = crc;
  }
  for (let slice = 1; slice < SLICES; slice++) {
    for (let i = 0; i < 256; i++) {
      const previous = tables[(slice - 1) * 256 + i] as bigint;
      tables[slice * 256 + i] = (previous >> 8n) ^ (tables[Number(previous & 0xffn)] as bigint);
    }
  }
}

/** The parts of the WebAssembly API used here (the project's TypeScript libraries do not declare it). */
interface WebAssemblyApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: Record<string, unknown> };
}

let kernel: Kernel | undefined;

/** Compiled on first use (under a millisecond); one per process, its memory reused by every CRC. */
function getKernel(): Kernel {
  if (!kernel) {
    const wasm = (globalThis as unknown as { WebAssembly: WebAssemblyApi }).WebAssembly;
    const instance = new wasm.Instance(new wasm.Module(moduleBytes()));
    const { update, memory } = instance.exports as {
      update: Kernel['update'];
      memory: { buffer: ArrayBuffer };
    };
    // The tables are native-endian 64-bit values, which the module's little-endian loads read
    // right on the little-endian machines Node and Lambda run on.
    fillTables(new BigUint64Array(memory.buffer, 0, SLICES * 256));
    kernel = { update, memory: new Uint8Array(memory.buffer) };
  }
  return kernel;
}

/** Incremental CRC-64/NVME of a byte stream: `update` per chunk, `digest` at the end. */
export class Crc64Nvme {
  /** The running (not yet inverted) CRC, as the module's signed i64 or as set here. */
  #crc = MASK64;

  /** Adds the bytes of `chunk` to the checksum. */
  update(chunk: Uint8Array): void {
    const { update, memory } = getKernel();
    let crc = this.#crc;
    for (let offset = 0; offset < chunk.length; offset += SCRATCH_BYTES) {
      const piece = chunk.subarray(offset, offset + SCRATCH_BYTES);
      memory.set(piece, SCRATCH_OFFSET);
      crc = update(crc, SCRATCH_OFFSET, piece.length);
    }
    this.#crc = crc;
  }

  /** The CRC of every byte passed to `update` so far (the instance may keep taking bytes). */
  digest(): bigint {
    return BigInt.asUintN(64, this.#crc ^ MASK64);
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
