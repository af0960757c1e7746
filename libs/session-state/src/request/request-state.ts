import { HttpException } from '@nestjs/common';
import type { HttpExchange } from '../http/http-exchange.js';
import type { BeforeFirstByte, HoldErrorReply, ResponseHold } from '../http/response-hold.js';
import { RequestItems } from '../items/request-items.js';
import { graphQLErrorReply } from './graphql-reply.js';
import type { Unprotected } from '../protection/cookie-signer.js';
import { SessionLifecycle, type SessionOwner } from '../session/session.lifecycle.js';
import type { SessionRuntime } from '../session/session.runtime.js';
import { TempDataLifecycle, type TempDataHost } from '../temp-data/temp-data.lifecycle.js';
import { SessionLogEvents } from '../logging/session-log-events.js';
import { HiddenFromLogs } from '../logging/hidden-from-logs.js';

/**
 * A participant saved once at the end of a request (TempData), before the response's first byte and
 * before the session commit.
 */
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
@HiddenFromLogs()
export class RequestState implements SessionOwner, TempDataHost {
  private itemsBag: RequestItems | undefined;
  private lifecycle: SessionLifecycle | undefined;
  private participants: EndOfRequestParticipant[] | undefined;
  private tempDataLifecycle: TempDataLifecycle | undefined;
  /** Holds the response's first byte once session or TempData was used. */
  responseHold: ResponseHold | undefined;
  private finalized = false;
  /** The commit failed inside Nest's pipeline before the response's head was written: an exception filter answers. */
  private failedInPipeline = false;
  /** A failed commit of the handler's own was found answered by the response's error status (no interceptor). */
  private answeredAtTheEnd = false;
  /**
   * GraphQL: a resolver's commit failed in the pipeline (its field reports the error). `alone`: the failed write
   * held only that field's own changes (see SessionStateInterceptor); `changeCalls`: the session's count then.
   */
  private fieldFailure: { alone: boolean; changeCalls: number } | undefined;
  /**
   * The handler returned through SessionStateInterceptor to a response that did not report a server error: a
   * 5xx found at the end came from a failure after it (a view that failed to render, an outer interceptor that
   * threw), which rolls its TempData back too. Declared, not initialised: requests without it pay nothing.
   */
  private returnedWithoutServerError?: boolean;
  private cookieKeyChecked = false;
  private verifiedCookieKey: Unprotected<string> | undefined;
  /**
   * A GraphQL resolver used this request's state: a failed end-of-request commit answers a GraphQL
   * error body. Declared, not initialised: HTTP requests pay nothing for it.
   */
  graphql?: boolean;

  constructor(
    readonly runtime: SessionRuntime,
    /** The request and its response, through the platform boundary. */
    readonly exchange: HttpExchange,
  ) {}

  get items(): RequestItems {
    return (this.itemsBag ??= new RequestItems());
  }

  get sessionLifecycle(): SessionLifecycle {
    return (this.lifecycle ??= new SessionLifecycle(this.runtime, this.exchange, this));
  }

  /** The verified key of the session cookie, checked once per request. */
  sessionCookieKey(): Unprotected<string> | undefined {
    if (!this.cookieKeyChecked) {
      this.cookieKeyChecked = true;
      this.verifiedCookieKey = this.runtime.sessionKeyOf(this.exchange.cookieHeader);
    }
    return this.verifiedCookieKey;
  }

  /**
   * The request carries a session cookie. A request that never loads its session still slides the
   * idle timeout (ASP.NET refreshes on every request): in the in-process store at once, elsewhere after
   * the response, unless this instance slid it within `slideSkipWindow`: then nothing is registered
   * at all (no listener, no Redis call).
   */
  watchIdleTimeout(): void {
    const key = this.sessionCookieKey()?.value;
    if (key === undefined) return;
    const inProcess = this.runtime.inProcessStore;
    if (inProcess) {
      // In this process a slide costs a table lookup: done now, instead of remembering slides.
      inProcess.refreshNow(key, this.runtime.options.idleTimeout);
      return;
    }
    if (this.runtime.slidRecently(key)) return;
    this.exchange.onFinish(() => {
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
   * The handler (a resolver) threw `error` through SessionStateInterceptor. When it is the failure of a commit the
   * handler ran (`session.commit()`, `UserSessions.bind()`), the exception filters answer it (a GraphQL field reports
   * it) as they answer a failed commit of the pipeline: the failed write is not tried again.
   */
  handlerFailed(error: unknown, field?: { alone: boolean }): void {
    if (this.lifecycle?.failureAnswered(error)) this.commitFailedInPipeline(this.lifecycle, field);
    this.markFailed();
  }

  /**
   * The handler returned `value` for Nest to answer with, and its session committed in Nest's pipeline
   * (SessionStateInterceptor, REST): what fails after it, before the response, is a failed request as a handler that
   * threw is (see commitBeforeFirstByteLater). A web `Response` it returned carries its own status.
   */
  handlerReturned(value: unknown): void {
    this.returnedWithoutServerError =
      value instanceof Response ? value.status < 500 : !this.exchange.reportsServerError();
  }

  private commitFailedInPipeline(lifecycle: SessionLifecycle, field: { alone: boolean } | undefined): void {
    // A head the route wrote itself is held: Nest's filters would answer behind it (Fastify sees it as sent
    // and only ends the response, the route's 200 going out; on Express their reply queues behind the
    // route's end), so the hold replaces the response with the error reply, as without the interceptor.
    this.failedInPipeline = this.responseHold?.holdsHead !== true;
    if (field) {
      this.fieldFailure = {
        alone: field.alone && (this.fieldFailure?.alone ?? true),
        changeCalls: lifecycle.changeCalls,
      };
    }
  }

  private async saveParticipants(): Promise<void> {
    if (this.finalized) return;
    this.finalized = true;
    for (const participant of this.participants ?? []) await participant.save();
  }

  /**
   * Commits the session from Nest's pipeline (the interceptor), so a failure there reaches the
   * exception filters and the response they write goes out as they wrote it. TempData is not saved
   * here: interceptors outside this one and exception filters may still change it; it is saved once,
   * before the response's first byte. Safe to call more than once: later commits write only what
   * changed since. Throws a 503 HttpException when the commit fails under `throwOnError`.
   * `field`: a GraphQL resolver's commit, whose failure only its field reports (see answerStands).
   */
  async commitSessionInPipeline(field?: { alone: boolean }): Promise<void> {
    const lifecycle = this.lifecycle;
    if (!lifecycle) return;
    try {
      // The lock stays until the final commit before the first byte, which saves TempData too.
      await lifecycle.finish({ releaseLock: false });
    } catch (error) {
      this.commitFailedInPipeline(lifecycle, field);
      // The request failed: what its handler did to TempData is not saved (an exception filter may set its own).
      this.markFailed();
      throw error;
    }
  }

  /**
   * The session has something to commit, or TempData (saved only at the end of the request) was changed: what a
   * failed commit in Nest's pipeline would take down with it (a GraphQL resolver behind the interceptor asks before
   * it runs).
   */
  get hasUnsavedChanges(): boolean {
    return (this.lifecycle?.hasUncommittedChanges ?? false) || (this.tempDataLifecycle?.changeCalls ?? 0) > 0;
  }

  /**
   * After a commit failed in Nest's pipeline, whether the response as written stands. On REST an exception filter
   * wrote it. On GraphQL the failing field reports the error and the rest of the response stands only if no other
   * field reported as done a write that is now lost: the failed write held that field's changes alone (a root field
   * of a mutation, which run one at a time, with nothing left unsaved before it) and nothing changed after it
   * (the end of the request does not try again, since it would apply what the field reported as failed). Otherwise
   * the response is the failure's error reply (503, 409 or 413 with a GraphQL body, no data).
   */
  private answerStands(): boolean {
    const failure = this.fieldFailure;
    return failure === undefined || (failure.alone && failure.changeCalls === this.lifecycle?.changeCalls);
  }

  /** GraphQL: a failed explicit commit is the request's answer at once (a field may have reported it). */
  answersEveryFailure(): boolean {
    return this.graphql === true;
  }

  /** First use of session or TempData: hold the response's first byte until their state is committed. */
  touch(): void {
    if (this.responseHold) return;
    // Used first after the response ended: its values can be read, a change could not be saved.
    if (this.exchange.ended) this.lifecycle?.close();
    this.responseHold = this.exchange.holdFirstByte(
      () => this.commitBeforeFirstByte(),
      () =>
        this.runtime.storeFailureLog.write(
          SessionLogEvents.SessionResponseHoldOverflow,
          'A streamed response kept writing past 1 MiB before the session commit finished: it was sent without ' +
            'waiting (a new session cookie could not be set; should the commit fail, the response is cut off before ' +
            'its end). Its writer ignores back-pressure (write() returning false), or the session store answers slowly.',
        ),
    );
  }

  /**
   * A response found to report a failed commit of the handler's own (no interceptor rolled the handler's TempData
   * back): its TempData cookies do not go out, whatever the end of the request then did (an abandon after the failure
   * commits; under `throwOnError: false` nothing throws). An error reply never carries a "saved" message.
   */
  private withoutTempDataOfTheFailure(cookiesBefore: readonly string[] | undefined): void {
    if (this.answeredAtTheEnd && cookiesBefore !== undefined)
      this.exchange.restoreSetCookies(cookiesBefore, this.runtime.options.cookie.name);
  }

  /**
   * The outermost point of the request, before the response's first byte (a microtask after its
   * first `write`, `end`, `writeHead` or `flushHeaders`, so after every interceptor and exception
   * filter): saves TempData, then commits the session; an error reply when the commit failed.
   * Undefined at once when the session alone took part and the in-process store committed it
   * without a promise. From here on a change could not be saved any more, so it is refused
   * (SessionResponseStartedError, TempDataResponseStartedError) rather than lost, on every store.
   */
  private commitBeforeFirstByte(): ReturnType<BeforeFirstByte> {
    const lifecycle = this.lifecycle;
    // A commit the handler ran failed last, and the response may report it: a REST response with an error status
    // does (it stands; trying the write again could land it under that answer); a GraphQL field may have (the
    // error reply, for whatever the fields said). A response with another status is answered as done: its
    // changes are tried again, and land before it leaves or it is replaced by the error reply.
    // Also after an exception filter answered one failure: a second one (the filter's own commit) is its answer too.
    if (
      lifecycle !== undefined &&
      (this.graphql === true || this.exchange.reportsError()) &&
      lifecycle.failureAnswered() &&
      !this.failedInPipeline
    ) {
      this.failedInPipeline = this.graphql !== true;
      // REST: no interceptor rolled the handler's TempData back, and its cookies do not go out with the error (below).
      // GraphQL's answer is the error reply, which takes them off, or (throwOnError: false) the fields' own.
      this.answeredAtTheEnd = this.graphql !== true;
    }
    if (this.participants === undefined && lifecycle) {
      this.finalized = true;
      lifecycle.close();
      try {
        if (lifecycle.finishNow()) return undefined;
      } catch {
        // The app's code it runs (hasConsent, a cookie option) threw: finish() reports it as a failure.
      }
    }
    return this.commitBeforeFirstByteLater();
  }

  private async commitBeforeFirstByteLater(): Promise<HoldErrorReply | undefined> {
    const cookiesBefore = this.participants === undefined ? undefined : this.exchange.setCookies();
    // Nest answered a failure after the handler returned (ASP.NET saves TempData only for a result that executed):
    // what the request did to TempData is not saved, values read stay for the next request.
    if (this.returnedWithoutServerError === true && this.exchange.reportsServerError()) this.markFailed();
    try {
      if (this.participants !== undefined) await this.saveParticipants();
      if (this.lifecycle) {
        this.lifecycle.close();
        await this.lifecycle.finish();
      }
      this.withoutTempDataOfTheFailure(cookiesBefore);
      return undefined;
    } catch (error) {
      if (this.failedInPipeline && this.answerStands()) {
        // An exception filter answered already; what it says reports a write that did not happen, and a cache must
        // not keep that for anyone, whatever the route had said of its own answer.
        this.exchange.preventCaching();
        this.withoutTempDataOfTheFailure(cookiesBefore);
        return undefined;
      }
      // A 503 means nothing of the request was saved: TempData's cookies do not go out with it either. The
      // session cookie stays as the commit left it (a regenerate()'s new key, written before a later step failed).
      if (cookiesBefore !== undefined)
        this.exchange.restoreSetCookies(cookiesBefore, this.runtime.options.cookie.name);
      const reply = errorReplyOf(error);
      return this.graphql ? graphQLErrorReply(reply, this.exchange.requestBody) : reply;
    } finally {
      this.lifecycle?.close();
    }
  }
}

/** The JSON reply that replaces a response whose end-of-request commit failed. */
function errorReplyOf(error: unknown): HoldErrorReply {
  if (error instanceof HttpException) {
    const response = error.getResponse();
    const status = error.getStatus();
    return {
      status,
      body: typeof response === 'object' ? response : { statusCode: status, message: response },
    };
  }
  return { status: 503, body: { statusCode: 503, message: (error as Error).message } };
}
