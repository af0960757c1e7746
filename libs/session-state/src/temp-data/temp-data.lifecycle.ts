import type { EndOfRequestParticipant, RequestState } from '../module/request-state.js';
import { CookieTempDataProvider } from './cookie-temp-data.provider.js';
import { SessionTempDataProvider } from './session-temp-data.provider.js';
import type { TempDataProvider } from './temp-data-provider.interface.js';
import { TempDataDictionary } from './temp-data.dictionary.js';

/** One request's TempData: the dictionary, its provider, and the save at the end of the request. */
export class TempDataLifecycle implements EndOfRequestParticipant {
  private current: TempDataDictionary;
  private readonly provider: TempDataProvider;
  private loaded: ReadonlyMap<string, unknown> = new Map();

  constructor(private readonly state: RequestState) {
    const { runtime, req, res } = state;
    this.provider =
      runtime.options.tempData.provider === 'session'
        ? new SessionTempDataProvider(runtime, state.sessionLifecycle.session)
        : new CookieTempDataProvider(runtime, req, res);
    this.current = new TempDataDictionary(() => {
      this.loaded = this.provider.load();
      return this.loaded;
    });
    state.participate(this);
  }

  /** The request's dictionary (replaced by a fresh one over the same loaded values on rollback). */
  get dictionary(): TempDataDictionary {
    return this.current;
  }

  rollback(): void {
    if (!this.current.isLoaded) {
      this.current = new TempDataDictionary(() => {
        this.loaded = this.provider.load();
        return this.loaded;
      });
      return;
    }
    const loaded = this.loaded;
    this.current = new TempDataDictionary(() => loaded);
  }

  /** With the session provider TempData needs the session loaded first. */
  async prepare(): Promise<void> {
    if (this.state.runtime.options.tempData.provider === 'session') await this.state.sessionLifecycle.load();
  }

  save(): void {
    if (!this.current.isLoaded) return;
    try {
      this.provider.save(this.current.toSave(), this.loaded);
    } catch (error) {
      this.state.runtime.logger.error(`TempData could not be saved: ${(error as Error).message}`);
    }
  }
}
