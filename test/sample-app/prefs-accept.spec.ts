/**
 * The preferences page's content negotiation without Express (`prefersHtml`): a browser's form post gets
 * the HTML page, fetch, curl and JSON clients get JSON, as `req.accepts(['json', 'html'])` decided before.
 */
import { describe, expect, test } from '@jest/globals';
import { prefersHtml } from '../../sample-app/src/prefs/accept.js';

describe('prefersHtml', () => {
  test.each([
    ['text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8', true],
    ['text/html', true],
    ['text/*', true],
    ['application/json;q=0.5, text/html', true],
    ['*/*;q=0.1, text/html;q=0.2', true],
  ])('%j: HTML', (accept, expected) => {
    expect(prefersHtml(accept)).toBe(expected);
  });

  test.each([
    [undefined],
    [''],
    ['*/*'],
    ['application/json'],
    ['application/json, text/html'],
    ['text/html;q=0.5, application/*'],
    ['text/html;q=0, */*'],
    ['image/png'],
  ])('%j: JSON', (accept) => {
    expect(prefersHtml(accept)).toBe(false);
  });
});
