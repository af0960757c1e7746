import { HttpException } from '@nestjs/common';
import {
  hasEndHold,
  holdResponseEnd,
  type ResponseEndHold,
  replaceWithJsonError,
  type HttpRequest,
  type HttpResponse,
} from '../http/http-exchange.js';
import { RequestItems } from '../items/request-items.js';
import type { Unprotected } from '../protection/cookie-signer.js';
import { SessionLifecycle } from '../session/session.lifecycle.js';
import type { SessionRuntime } from '../session/session.runtime.js';
import { TempDataLifecycle } from '../temp-data/temp-data.lifecycle.js';

/** A participant saved at the end of a request (TempData); runs before the session commit. */
export interface EndOfRequestParticipant {
  /** Writes its state (cookies, or values into the session). */
  save(): void | Promise<void>;
  /** The handler threw: forget what it did, keep what happens afterwards (in exception filters). */
  rollback(): void;
}

/**
 * Everything one request carries: its items, its session and its TempData, created lazily, and
 * the end-of-request work that commits them before the response headers leave.
 */
export class RequestState implements ResponseEndHold {
  private itemsBag: RequestItems | undefined;
  private lifecycle: SessionLifecycle | undefined;
  private participants: EndOfRequestParticipant[] | undefined;
  private tempDataLifecycle: TempDataLifecycle | undefined;
  private hooked = false;
  /** `end` is held by the prototype-level hook until the state is committed. */
  private endHeld = false;
  private finalized = false;
  private cookieKeyChecked = false;
  private verifiedCookieKey: Unprotected<string> | undefined;

  constructor(
    readonly runtime: SessionRuntime,
    readonly req: HttpRequest,
    readonly res: HttpResponse,
  ) {}

  get items(): RequestItems {
    return (this.itemsBag ??= new RequestItems());
  }

  get sessionLifecycle(): SessionLifecycle {
    return (this.lifecycle ??= new SessionLifecycle(
      this.runtime,
      this.req,
      this.res,
      () => this.touch(),
      () => this.sessionCookieKey(),
    ));
  }

  /** The verified key of the session cookie, checked once per request. */
  sessionCookieKey(): Unprotected<string> | undefined {
    if (!this.cookieKeyChecked) {
      this.cookieKeyChecked = true;
      this.verifiedCookieKey = this.runtime.sessionKeyOf(this.req);
    }
    return this.verifiedCookieKey;
  }

  /**
   * The request carries a session cookie. A request that never loads its session still slides the
   * idle timeout (ASP.NET refreshes on every request), after the response, unless this instance slid
   * it within `slideSkipWindow`: then nothing is registered at all (no listener, no Redis call).
   */
  watchIdleTimeout(): void {
    const key = this.sessionCookieKey()?.value;
    if (key === undefined || this.runtime.slidRecently(key)) return;
    this.res.once('finish', () => {
      if (!this.lifecycle?.session.isLoaded) this.runtime.slideUntouched(key);
    });
  }

  get tempData(): TempDataLifecycle {
    return (this.tempDataLifecycle ??= new TempDataLifecycle(this));
  }

  /** Registers TempData (or another participant) to save before the session commits. */
  participate(participant: EndOfRequestParticipant): void {
    (this.participants ??= []).push(participant);
    this.touch();
  }

  /**
   * The handler threw: what it did to TempData is rolled back (ASP.NET saves TempData only for a
   * result); the session keeps its changes. An exception filter may still set TempData.
   */
  markFailed(): void {
    for (const participant of this.participants ?? []) participant.rollback();
  }

  /**
   * Saves TempData and commits the session. Safe to call more than once: later calls commit only
   * what changed since. Throws a 503 HttpException when the commit fails under `throwOnError`.
   */
  async finalize(): Promise<void> {
    if (!this.finalized) {
      this.finalized = true;
      for (const participant of this.participants ?? []) await participant.save();
    }
    if (this.lifecycle) await this.lifecycle.finish();
  }

  /** First use of session or TempData: hold `res.end` until their state is committed. */
  private touch(): void {
    if (this.hooked) return;
    this.hooked = true;
    if (hasEndHold(this.res)) this.endHeld = true;
    else holdResponseEnd(this.res, () => this.commitBeforeEnd());
  }

  /** @internal The response's `end` (through the prototype hook): commit first, then let it go. */
  interceptEnd(args: unknown[], send: (args: unknown[]) => void): boolean {
    if (!this.endHeld) return false;
    this.endHeld = false;
    this.commitBeforeEnd().then(
      (proceed) => proceed && send(args),
      () => send(args),
    );
    return true;
  }

  /** Finalizes before the response ends; false when it answered with an error itself. */
  private async commitBeforeEnd(): Promise<boolean> {
    try {
      await this.finalize();
      return true;
    } catch (error) {
      if (this.res.headersSent) return true;
      const status = error instanceof HttpException ? error.getStatus() : 503;
      replaceWithJsonError(this.res, status, { statusCode: status, message: (error as Error).message });
      return false;
    } finally {
      this.lifecycle?.close();
    }
  }
}
