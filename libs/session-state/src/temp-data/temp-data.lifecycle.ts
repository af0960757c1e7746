import { TempDataResponseStartedError } from '../errors/response-started.errors.js';
import type { HttpExchange } from '../http/http-exchange.js';
import type { SessionLifecycle } from '../session/session.lifecycle.js';
import type { SessionRuntime } from '../session/session.runtime.js';
import { CookieTempDataProvider } from './cookie-temp-data.provider.js';
import { SessionTempDataProvider } from './session-temp-data.provider.js';
import type { TempDataProvider, TempDataSaveRefusal } from './temp-data-provider.interface.js';
import { TempDataDictionary, type TempDataGuard } from './temp-data.dictionary.js';
import { logEvent, SessionLogEvents } from '../logging/session-log-events.js';
import { HiddenFromLogs } from '../logging/hidden-from-logs.js';
import { assertTempDataValue } from './temp-data.value-codec.js';

/** What TempData needs of the request it belongs to (the request's state, one layer up). */
export interface TempDataHost {
  readonly runtime: SessionRuntime;
  readonly exchange: HttpExchange;
  /** The request's session (the session provider keeps TempData in it). */
  readonly sessionLifecycle: SessionLifecycle;
  /** Saves `participant` once, before the response's first byte and the session commit. */
  participate(participant: { save(): void | Promise<void>; rollback(): void }): void;
}

/**
 * One request's TempData: the dictionary, its provider, and the save, once, at the outermost point
 * of the request (the response hold, a microtask after the response's first byte was written: after
 * every interceptor and exception filter, whatever decorators the handler used).
 */
@HiddenFromLogs()
export class TempDataLifecycle {
  private current: TempDataDictionary;
  private readonly provider: TempDataProvider;
  private readonly guard: TempDataGuard;
  /** What the provider returned; read at most once per request, even across a rollback. */
  private loaded: ReadonlyMap<string, unknown> | undefined;
  /** The save started: later changes could not be saved and are refused. */
  private saved = false;

  constructor(private readonly state: TempDataHost) {
    const { runtime, exchange } = state;
    const provider: TempDataProvider =
      runtime.options.tempData.provider === 'session'
        ? new SessionTempDataProvider(runtime, state.sessionLifecycle.session)
        : new CookieTempDataProvider(runtime, exchange);
    this.provider = provider;
    this.guard = {
      beforeChange: () => this.beforeChange(),
      checkSize: provider.checkSize?.bind(provider),
      loadedDiscarded: provider.loadedDiscarded?.bind(provider),
    };
    this.current = this.freshDictionary();
    state.participate(this);
  }

  /** The request's dictionary (replaced by a fresh one over the same loaded values on rollback). */
  get dictionary(): TempDataDictionary {
    return this.current;
  }

  rollback(): void {
    this.current = this.freshDictionary();
  }

  private freshDictionary(): TempDataDictionary {
    return new TempDataDictionary(() => (this.loaded ??= this.provider.load()), this.guard);
  }

  /** How many calls changed TempData in this request (set, remove, clear, keep): see RequestState.hasUnsavedChanges. */
  changeCalls = 0;

  private beforeChange(): void {
    this.changeCalls++;
    if (!this.saved && !this.state.exchange.headersSent) return;
    const error = new TempDataResponseStartedError();
    logEvent(this.state.runtime.logger, SessionLogEvents.TempDataResponseStarted, error.message);
    throw error;
  }

  /** With the session provider TempData needs the session loaded first. */
  async prepare(): Promise<void> {
    if (this.state.runtime.options.tempData.provider === 'session') await this.state.sessionLifecycle.load();
  }

  save(): void {
    if (this.saved) return;
    const dictionary = this.current;
    // ASP.NET's IKeepTempDataResult: a redirect keeps every value, read or not, for the page it leads to.
    const { exchange } = this.state;
    if (dictionary.isLoaded && exchange.isRedirect() && !exchange.headersSent) dictionary.keep();
    this.saved = true;
    if (!dictionary.isLoaded) return;
    const values = dictionary.toSave();
    try {
      const refused = this.provider.save(values, this.loaded ?? new Map());
      if (refused) this.saveUnread(dictionary, values, refused);
    } catch (error) {
      if (this.saveWithoutBroken(values)) return;
      logEvent(
        this.state.runtime.logger,
        SessionLogEvents.TempDataSaveFailed,
        `TempData could not be saved: ${(error as Error).message}`,
      );
    }
  }

  /**
   * A value read from TempData and then changed in place into one it cannot hold (a function or a cycle added):
   * the other values are saved without it, and the log names it. Values set are copies taken at `set`, which
   * always encode. False when no value is broken, or the rest fails too.
   */
  private saveWithoutBroken(values: ReadonlyMap<string, unknown>): boolean {
    const broken: string[] = [];
    let firstProblem = '';
    for (const [key, value] of values) {
      try {
        assertTempDataValue(key, value);
      } catch (error) {
        broken.push(key);
        firstProblem ||= (error as Error).message;
      }
    }
    if (broken.length === 0) return false;
    const rest = new Map([...values].filter(([key]) => !broken.includes(key)));
    try {
      const refused = this.provider.save(rest, this.loaded ?? new Map());
      if (refused) return false;
    } catch {
      return false;
    }
    logEvent(
      this.state.runtime.logger,
      SessionLogEvents.TempDataSaveFailed,
      `TempData values changed in place after they were read could not be saved and were dropped ` +
        `(${broken.map((key) => JSON.stringify(key)).join(', ')}): ${firstProblem} The other values are saved. ` +
        'Set a changed value again with set() (it checks it there).',
    );
    return true;
  }

  /**
   * The provider could not carry `values`, grown past its limit by values read and then kept (a set
   * over the limit throws at set). Values set or loaded and not read are saved without them: a value
   * whose set was accepted is not lost, and a value read is not shown again.
   */
  private saveUnread(
    dictionary: TempDataDictionary,
    values: ReadonlyMap<string, unknown>,
    refused: TempDataSaveRefusal,
  ): void {
    const { logger } = this.state.runtime;
    const unread = dictionary.toSaveUnread();
    const dropped = [...values.keys()].filter((key) => !unread.has(key));
    if (dropped.length > 0 && !this.provider.save(unread, this.loaded ?? new Map())) {
      logEvent(
        logger,
        SessionLogEvents.TempDataKeptValuesDropped,
        `TempData values read in this request were not kept (${dropped.map((key) => JSON.stringify(key)).join(', ')}, ` +
          `kept by keep() or a redirect): with them ${refused.reason}. The values not read are saved. Keep TempData ` +
          'small (a message, an id), or raise the limit.',
      );
      return;
    }
    // Unread values alone over the limit. When values set in this request are among them (accepted at set, so a
    // stored value was changed in place past the limit since), those are saved without the others.
    const setHere = dictionary.toSaveSetHere();
    if (
      setHere.size > 0 &&
      setHere.size < unread.size &&
      !this.provider.save(setHere, this.loaded ?? new Map())
    ) {
      const left = [...values.keys()].filter((key) => !setHere.has(key));
      logEvent(
        logger,
        SessionLogEvents.TempDataKeptValuesDropped,
        `TempData values not set in this request were not saved (${left.map((key) => JSON.stringify(key)).join(', ')}): ` +
          `with them ${refused.reason} (changed in place after they were read?). The values set in this request are saved.`,
      );
      return;
    }
    // The values set in this request alone over the limit too: those that grew in place since their set (a peek()
    // result pushed to) carry sizes no set accepted, and go, largest growth first, until the others fit; with the
    // stored values, else without them.
    const grown = dictionary.grownSinceSet();
    for (const base of grown.length > 0 && setHere.size < unread.size ? [unread, setHere] : [unread]) {
      const rest = new Map(base);
      const dropped: string[] = [];
      for (const [key] of grown) {
        if (!rest.delete(key)) continue;
        dropped.push(key);
        if (this.provider.save(rest, this.loaded ?? new Map())) continue;
        // The others not saved: stored values (with the values set here only), and values read and kept.
        const stored = [...values.keys()].filter((name) => !rest.has(name) && !dropped.includes(name));
        const names = (keys: string[]) => keys.map((name) => JSON.stringify(name)).join(', ');
        logEvent(
          logger,
          SessionLogEvents.TempDataKeptValuesDropped,
          `TempData values set in this request and then grown in place were not saved (${names(dropped)})` +
            (stored.length > 0 ? `, nor these others (${names(stored)})` : '') +
            `: with them ${refused.reason}. The other values are saved. Change a copy and set() it again: set() ` +
            'checks the size.',
        );
        return;
      }
    }
    // Otherwise loaded under a larger limit, larger (for the cookie) than what the request carried. What the browser
    // or session has stays.
    logEvent(
      logger,
      SessionLogEvents.TempDataCookieTooLarge,
      `TempData not saved: ${refused.reason}. Keep TempData small (a message, an id), or raise the limit.`,
    );
  }
}
