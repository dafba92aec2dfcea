import { describe, expect, it } from 'vitest';
import { RangeSet, splitRanges } from '../../cli/range-set.ts';

describe('RangeSet', () => {
  it('merges touching and overlapping ranges and keeps them sorted', () => {
    const set = new RangeSet();
    set.add(10, 20);
    set.add(0, 5);
    set.add(20, 25);
    set.add(3, 11);
    set.add(40, 50);
    expect(set.toJSON()).toEqual([
      [0, 25],
      [40, 50],
    ]);
    expect(set.bytes).toBe(35);
    expect(set.contiguousEnd).toBe(25);
  });

  it('names the missing ranges of a file and whether it is complete', () => {
    const set = new RangeSet([
      [5, 10],
      [20, 30],
    ]);
    expect(set.contiguousEnd).toBe(0);
    expect(set.missing(40)).toEqual([
      [0, 5],
      [10, 20],
      [30, 40],
    ]);
    expect(set.covers(40)).toBe(false);
    set.add(0, 40);
    expect(set.missing(40)).toEqual([]);
    expect(set.covers(40)).toBe(true);
  });

  it('ignores empty ranges', () => {
    const set = new RangeSet([[7, 7]]);
    expect(set.toJSON()).toEqual([]);
  });
});

describe('splitRanges', () => {
  it('cuts ranges into pieces of at most the given size, in order', () => {
    expect(
      splitRanges(
        [
          [0, 10],
          [20, 23],
        ],
        4,
      ),
    ).toEqual([
      [0, 4],
      [4, 8],
      [8, 10],
      [20, 23],
    ]);
  });
});
