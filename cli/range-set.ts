/** A half-open byte range `[start, end)`. */
export type ByteRange = readonly [start: number, end: number];

/**
 * The byte ranges of a file already written, kept sorted and merged: a few entries however many
 * writes went in (one per gap at most).
 */
export class RangeSet {
  #ranges: Array<[number, number]> = [];

  constructor(ranges: Iterable<ByteRange> = []) {
    for (const [start, end] of ranges) this.add(start, end);
  }

  /** Marks `[start, end)` as present. */
  add(start: number, end: number): void {
    if (!(end > start)) return;
    const merged: Array<[number, number]> = [];
    let next: [number, number] = [start, end];
    let placed = false;
    for (const range of this.#ranges) {
      if (range[1] < next[0]) merged.push(range);
      else if (next[1] < range[0]) {
        if (!placed) merged.push(next);
        placed = true;
        merged.push(range);
      } else next = [Math.min(range[0], next[0]), Math.max(range[1], next[1])];
    }
    if (!placed) merged.push(next);
    this.#ranges = merged;
  }

  /** Bytes present. */
  get bytes(): number {
    return this.#ranges.reduce((sum, [start, end]) => sum + end - start, 0);
  }

  /** The ranges, sorted and merged (a copy). */
  toJSON(): Array<[number, number]> {
    return this.#ranges.map(([start, end]) => [start, end]);
  }

  /** How far the file is present without a gap from byte 0. */
  get contiguousEnd(): number {
    const first = this.#ranges[0];
    return first && first[0] === 0 ? first[1] : 0;
  }

  /** The ranges of `[0, size)` still missing, in order. */
  missing(size: number): ByteRange[] {
    const gaps: ByteRange[] = [];
    let at = 0;
    for (const [start, end] of this.#ranges) {
      if (start >= size) break;
      if (start > at) gaps.push([at, start]);
      at = Math.max(at, end);
    }
    if (at < size) gaps.push([at, size]);
    return gaps;
  }

  /** True when every byte of `[0, size)` is present. */
  covers(size: number): boolean {
    return this.missing(size).length === 0;
  }
}

/** Splits ranges into pieces of at most `pieceSize` bytes, in order. */
export function splitRanges(ranges: readonly ByteRange[], pieceSize: number): ByteRange[] {
  const pieces: ByteRange[] = [];
  for (const [start, end] of ranges) {
    for (let at = start; at < end; at += pieceSize) pieces.push([at, Math.min(end, at + pieceSize)]);
  }
  return pieces;
}
