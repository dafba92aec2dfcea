import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  Crc64Nvme,
  combineCrc64Nvme,
  crc64Nvme,
  crc64NvmeFromBase64,
  crc64NvmeToBase64,
} from '../../shared/checksum/crc64nvme.ts';

/** The CRC one bit at a time, straight from the definition: the reference the fast code must match. */
function bitwiseCrc64Nvme(bytes: Uint8Array): bigint {
  let crc = 0xffffffffffffffffn;
  for (const byte of bytes) {
    crc ^= BigInt(byte);
    for (let bit = 0; bit < 8; bit++) crc = crc & 1n ? (crc >> 1n) ^ 0x9a6c9329ac4bc9b5n : crc >> 1n;
  }
  return crc ^ 0xffffffffffffffffn;
}

/** A seeded generator, so a failing split can be reproduced. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

describe('CRC-64/NVME', () => {
  it('gives the catalogued check value for "123456789"', () => {
    expect(crc64Nvme(Buffer.from('123456789'))).toBe(0xae8b14860a799888n);
  });

  it('is 0 for no bytes', () => {
    expect(new Crc64Nvme().digest()).toBe(0n);
  });

  it.each([1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 1000, 4099])(
    'matches the bitwise definition for %i random bytes',
    (length) => {
      const bytes = randomBytes(length);
      expect(crc64Nvme(bytes)).toBe(bitwiseCrc64Nvme(bytes));
    },
  );

  it('gives the same value whatever the chunking, including empty and unaligned chunks', () => {
    const bytes = randomBytes(10_000);
    const whole = crc64Nvme(bytes);
    const random = seededRandom(42);
    for (let round = 0; round < 20; round++) {
      const crc = new Crc64Nvme();
      let offset = 0;
      while (offset < bytes.length) {
        const length = Math.floor(random() * 40);
        crc.update(bytes.subarray(offset, offset + length));
        offset += length;
      }
      expect(crc.digest()).toBe(whole);
    }
  });

  it('matches the bitwise definition for every length and start offset around a 16-byte step', () => {
    const bytes = randomBytes(80);
    for (let start = 0; start < 17; start++) {
      for (let end = start; end <= bytes.length; end++) {
        const slice = bytes.subarray(start, end);
        expect(crc64Nvme(slice)).toBe(bitwiseCrc64Nvme(slice));
      }
    }
  });

  it('matches the bitwise definition across chunks larger than the module takes in one call (1 MiB)', () => {
    const bytes = randomBytes(1024 * 1024 + 4099);
    const crc = new Crc64Nvme();
    crc.update(bytes.subarray(0, 3));
    crc.update(bytes.subarray(3));
    expect(crc.digest()).toBe(bitwiseCrc64Nvme(bytes));
  });

  it('keeps separate instances separate while they alternate', () => {
    const first = randomBytes(5000);
    const second = randomBytes(5000);
    const a = new Crc64Nvme();
    const b = new Crc64Nvme();
    for (let offset = 0; offset < 5000; offset += 1000) {
      a.update(first.subarray(offset, offset + 1000));
      b.update(second.subarray(offset, offset + 1000));
    }
    expect(a.digest()).toBe(crc64Nvme(first));
    expect(b.digest()).toBe(crc64Nvme(second));
  });

  it('reads a chunk that is a view at an odd offset of a larger buffer', () => {
    const backing = randomBytes(1027);
    const view = new Uint8Array(backing.buffer, backing.byteOffset + 3, 1021);
    expect(crc64Nvme(view)).toBe(bitwiseCrc64Nvme(Uint8Array.from(view)));
  });

  it('can be read mid-stream and keep taking bytes', () => {
    const crc = new Crc64Nvme();
    crc.update(Buffer.from('12345'));
    expect(crc.digest()).toBe(crc64Nvme(Buffer.from('12345')));
    crc.update(Buffer.from('6789'));
    expect(crc.digest()).toBe(0xae8b14860a799888n);
  });
});

describe('combineCrc64Nvme', () => {
  it('gives the CRC of the concatenation for random splits, empty parts included', () => {
    const bytes = randomBytes(50_000);
    const whole = crc64Nvme(bytes);
    const random = seededRandom(7);
    for (let round = 0; round < 30; round++) {
      // Cut points in order, with repeats (empty parts) and the ends themselves.
      const cuts = [
        0,
        bytes.length,
        ...Array.from({ length: 1 + Math.floor(random() * 6) }, () =>
          Math.floor(random() * (bytes.length + 1)),
        ),
      ];
      if (round % 3 === 0) cuts.push(cuts[2]!, 0, bytes.length);
      cuts.sort((a, b) => a - b);
      let combined = 0n;
      for (let i = 0; i + 1 < cuts.length; i++) {
        const part = bytes.subarray(cuts[i], cuts[i + 1]);
        combined = combineCrc64Nvme(combined, crc64Nvme(part), part.length);
      }
      expect(combined).toBe(whole);
    }
  });

  it('treats an empty second part as nothing, and an empty first part as nothing', () => {
    const crc = crc64Nvme(Buffer.from('123456789'));
    expect(combineCrc64Nvme(crc, 0n, 0)).toBe(crc);
    expect(combineCrc64Nvme(0n, crc, 9)).toBe(crc);
  });

  it('combines parts of equal length in any grouping (as parallel ranges do)', () => {
    const parts = Array.from({ length: 8 }, () => randomBytes(4096));
    const whole = crc64Nvme(Buffer.concat(parts));
    const crcs = parts.map((part) => crc64Nvme(part));
    const leftToRight = crcs.reduce((acc, crc) => combineCrc64Nvme(acc, crc, 4096), 0n);
    const pairs = [0, 2, 4, 6].map((i) => combineCrc64Nvme(crcs[i]!, crcs[i + 1]!, 4096));
    const quads = [
      combineCrc64Nvme(pairs[0]!, pairs[1]!, 8192),
      combineCrc64Nvme(pairs[2]!, pairs[3]!, 8192),
    ];
    expect(leftToRight).toBe(whole);
    expect(combineCrc64Nvme(quads[0]!, quads[1]!, 16_384)).toBe(whole);
  });

  it('handles lengths beyond 4 GiB without losing bits', () => {
    // combine(a, b, n) = a·x^(8n) ⊕ b: shifting by 4 GiB and then by the rest must equal shifting
    // by 5 GiB at once (a length kept in 32 bits would wrap here).
    const zeros5GiB = 5 * 2 ** 30;
    const a = crc64Nvme(Buffer.from('abc'));
    const oneStep = combineCrc64Nvme(a, 0x1234n, zeros5GiB);
    const twoSteps = combineCrc64Nvme(combineCrc64Nvme(a, 0n, 2 ** 32), 0x1234n, zeros5GiB - 2 ** 32);
    expect(oneStep).toBe(twoSteps);
    expect(oneStep).not.toBe(combineCrc64Nvme(a, 0x1234n, zeros5GiB - 2 ** 32));
  });

  it('refuses a negative or fractional length', () => {
    expect(() => combineCrc64Nvme(1n, 2n, -1)).toThrow(RangeError);
    expect(() => combineCrc64Nvme(1n, 2n, 1.5)).toThrow(RangeError);
  });
});

describe('the base64 form', () => {
  it('is 8 bytes big-endian, as S3 writes ChecksumCRC64NVME', () => {
    expect(crc64NvmeToBase64(0xae8b14860a799888n)).toBe('rosUhgp5mIg=');
    expect(crc64NvmeToBase64(0n)).toBe('AAAAAAAAAAA=');
    expect(crc64NvmeFromBase64('rosUhgp5mIg=')).toBe(0xae8b14860a799888n);
    expect(crc64NvmeFromBase64('rosUhgp5')).toBeUndefined();
  });
});
