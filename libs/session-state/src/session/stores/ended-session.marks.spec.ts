import { EndedSessionMarks } from './ended-session.marks.js';

describe('EndedSessionMarks', () => {
  it('answers how a key ended while its mark lasts, then nothing', () => {
    let now = 0;
    const marks = new EndedSessionMarks(() => now);
    marks.mark('a', 'moved', 100);
    marks.mark('b', 'abandoned', 100);
    expect([marks.endingOf('a'), marks.endingOf('b'), marks.endingOf('c')]).toEqual([
      'moved',
      'abandoned',
      undefined,
    ]);
    now = 100;
    expect(marks.endingOf('a')).toBeUndefined();
  });

  it('sweeps expired marks as new ones come: the table holds about the marks of the last keepMs', () => {
    let now = 0;
    const marks = new EndedSessionMarks(() => now);
    for (let i = 0; i < 10_000; i++) {
      marks.mark(`k${i}`, 'moved', 50);
      now += 1;
    }
    // 50 live at any time; the table sweeps once it reaches 1,024 (then twice the live ones, at least 1,024).
    expect(marks.size).toBeLessThanOrEqual(1_024);
    expect(marks.endingOf('k9999')).toBe('moved');
  });

  it('holds maxMarks at most, dropping the oldest', () => {
    const marks = new EndedSessionMarks(() => 0, 3);
    for (const key of ['a', 'b', 'c', 'd']) marks.mark(key, 'abandoned', 1_000);
    marks.mark('b', 'moved', 1_000); // marked again: the newest now
    marks.mark('e', 'moved', 1_000);
    expect(marks.size).toBe(3);
    expect(['a', 'b', 'c', 'd', 'e'].map((key) => marks.endingOf(key))).toEqual([
      undefined,
      'moved',
      undefined,
      'abandoned',
      'moved',
    ]);
  });
});
