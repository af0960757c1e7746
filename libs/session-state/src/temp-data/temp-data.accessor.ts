import { Injectable } from '@nestjs/common';
import { currentRequestState } from '../request/request-state.access.js';
import type { TempDataDictionary } from './temp-data.dictionary.js';

/**
 * The current request's TempData for singleton services (AsyncLocalStorage).
 *
 * @example
 * \@Injectable()
 * export class Flash {
 *   constructor(private readonly tempData: TempDataAccessor) {}
 *   async success(text: string) { (await this.tempData.load()).set('Message', text); }
 * }
 */
@Injectable()
export class TempDataAccessor {
  /** The dictionary; with the session provider call {@link load} first. */
  get current(): TempDataDictionary {
    return currentRequestState('TempData').tempData.dictionary;
  }

  /** The dictionary, ready to use with either provider (loads the session when TempData lives there). */
  async load(): Promise<TempDataDictionary> {
    const lifecycle = currentRequestState('TempData').tempData;
    await lifecycle.prepare();
    return lifecycle.dictionary;
  }
}
