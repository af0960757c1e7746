import {
  BadRequestException,
  Body,
  Controller,
  Get,
  Headers,
  Param,
  Post,
  Render,
  Res,
  UseFilters,
} from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { Session } from 'nest-session-state';
import { page } from '../layout/page.js';
import { prefersHtml } from './accept.js';
import { SessionErrorPageFilter } from '../errors/session-error-page.filter.js';

/** Session keys of preferences: `pref:<key>`. */
export const PREF_PREFIX = 'pref:';
const KEY_PATTERN = /^[A-Za-z0-9_.-]{1,40}$/;
/** A lone UTF-16 surrogate (with the u flag a pair is one code point, not matched). */
const LONE_SURROGATE = /\p{Cs}/u;
const MAX_VALUE_LENGTH = 200;

/** Preset forms of the HTML page (any key works through `POST /prefs/:key`). */
const PRESETS = [
  { key: 'theme', label: 'Theme', options: ['light', 'dark', 'high-contrast'] },
  { key: 'language', label: 'Language', options: ['en', 'fr', 'de', 'cy'] },
  { key: 'units', label: 'Units', options: ['metric', 'imperial'] },
];

/**
 * One session key per preference: concurrent `POST /prefs/:key` requests that write different keys
 * all persist, because a commit writes only the keys that changed.
 */
@UseFilters(SessionErrorPageFilter)
@Controller('prefs')
export class PrefsController {
  constructor(private readonly adapterHost: HttpAdapterHost) {}

  /** `{ <key>: <value> }` of every preference. */
  @Get()
  all(@Session() session: Session): Record<string, string> {
    return readPrefs(session);
  }

  /** An HTML page with forms for a few preferences. */
  @Get('edit')
  @Render('prefs')
  edit(@Session() session: Session) {
    const prefs = readPrefs(session);
    return page('prefs', 'Preferences', {
      prefs: Object.entries(prefs).map(([key, value]) => ({ key, value })),
      presets: PRESETS.map((preset) => ({
        ...preset,
        options: preset.options.map((value) => ({ value, selected: prefs[preset.key] === value })),
      })),
    });
  }

  /**
   * Sets `pref:<key>` to the form field `value`. A browser form post (Accept: text/html) is redirected
   * to the HTML page; other clients (fetch, curl) get the JSON of every preference. Either way the
   * handler answers through the platform's `redirect`/`reply` (Express or Fastify), after committing the
   * session: a failed commit then reaches SessionErrorPageFilter (a page for a browser, Nest's JSON otherwise).
   */
  @Post(':key')
  async set(
    @Param('key') key: string,
    @Body('value') value: unknown,
    @Session() session: Session,
    @Headers('accept') accept: string | undefined,
    @Res() res: unknown,
  ): Promise<void> {
    if (!KEY_PATTERN.test(key)) {
      throw new BadRequestException('The preference key must be 1 to 40 letters, digits, ".", "_" or "-".');
    }
    // setString stores UTF-8, which has no lone surrogate (a "\ud800" escape in JSON): a 400, not the library's TypeError.
    if (typeof value !== 'string' || value.length > MAX_VALUE_LENGTH || LONE_SURROGATE.test(value)) {
      throw new BadRequestException(
        `The form field "value" must be text of at most ${MAX_VALUE_LENGTH} characters.`,
      );
    }
    session.setString(PREF_PREFIX + key, value);
    await session.commit();
    const http = this.adapterHost.httpAdapter;
    if (prefersHtml(accept)) http.redirect(res, 303, '/prefs/edit');
    else http.reply(res, readPrefs(session), 200);
  }
}

/**
 * Every preference as own properties: built with Object.fromEntries, so a key such as `__proto__` or
 * `constructor` is a property like any other (assigning `prefs['__proto__'] = v` would set the
 * object's prototype instead, and the key would vanish from the JSON).
 */
function readPrefs(session: Session): Record<string, string> {
  return Object.fromEntries(
    session.keys
      .filter((key) => key.startsWith(PREF_PREFIX))
      .map((key) => [key.slice(PREF_PREFIX.length), session.getString(key) ?? '']),
  );
}
