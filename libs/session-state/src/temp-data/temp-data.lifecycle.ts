import type { EndOfRequestParticipant, RequestState } from '../module/request-state.js';
import { CookieTempDataProvider } from './cookie-temp-data.provider.js';
import { SessionTempDataProvider } from './session-temp-data.provider.js';
import type { TempDataProvider } from './temp-data-provider.interface.js';
import { TempDataDictionary } from './temp-data.dictionary.js';

/** One request's TempData: the dictionary, its provider, and the save at the end of the request. */
export class TempDataLifecycle implements EndOfRequestParticipant {
  private current: TempDataDictionary;
  private readonly provider: TempDataProvider;
  /** What the provider returned; read at most once per request, even across a rollback. */
  private loaded: ReadonlyMap<string, unknown> | undefined;

  constructor(private readonly state: RequestState) {
    const { runtime, req, res } = state;
    this.provider =
      runtime.options.tempData.provider === 'session'
        ? new SessionTempDataProvider(runtime, state.sessionLifecycle.session)
        : new CookieTempDataProvider(runtime, req, res);
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
    return new TempDataDictionary(() => (this.loaded ??= this.provider.load()));
  }

  /** With the session provider TempData needs the session loaded first. */
  async prepare(): Promise<void> {
    if (this.state.runtime.options.tempData.provider === 'session') await this.state.sessionLifecycle.load();
  }

  save(): void {
    if (!this.current.isLoaded) return;
    try {
      this.provider.save(this.current.toSave(), this.loaded ?? new Map());
    } catch (error) {
      this.state.runtime.logger.error(`TempData could not be saved: ${(error as Error).message}`);
    }
  }
}
