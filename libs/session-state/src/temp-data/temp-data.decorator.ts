import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import { loadFailure, requestStateOf } from '../request/request-state.access.js';
import { SessionStateInterceptor } from '../request/session-state.interceptor.js';
import type { TempDataDictionary } from './temp-data.dictionary.js';

/** The request's TempData (see {@link TempDataDictionary}). */
export type TempData = TempDataDictionary;

// Reads TempData for the handler; the exported decorator also applies the commit interceptor.
const tempDataParameter = createParamDecorator(
  async (key: string | undefined, context: ExecutionContext): Promise<unknown> => {
    const state = requestStateOf(context, '@TempData()');
    const tempData = state.tempData;
    try {
      await tempData.prepare();
    } catch (error) {
      if (state.runtime.store.throwOnError) throw loadFailure(state, error);
    }
    return typeof key === 'string' ? tempData.dictionary.get(key) : tempData.dictionary;
  },
);

/**
 * Handler parameter decorator: `@TempData()` gives the request's {@link TempDataDictionary};
 * `@TempData('key')` gives one value, which counts as a read (it is gone after this request).
 *
 * @example
 * \@Post('create') \@Redirect('/customers')
 * create(\@Body('name') name: string, \@TempData() tempData: TempData) {
 *   tempData.set('Message', `Customer ${name} added`);
 * }
 * \@Get() index(\@TempData('Message') message?: string) { return { message }; }
 */
export const TempData =
  (key?: string): ParameterDecorator =>
  (target, method, index) => {
    tempDataParameter(key)(target, method, index);
    SessionStateInterceptor.applyTo(target, method);
  };
