/**
 * The part of Nest's HTTP adapter (`HttpAdapterHost.httpAdapter`) the platforms use: public API of
 * `AbstractHttpAdapter` in Nest 11 and 12.
 */
export interface PlatformAdapter {
  getType(): string;
  getInstance<T = unknown>(): T;
  setOnRequestHook(
    hook: (request: unknown, response: unknown, done: (error?: unknown) => void) => void | Promise<void>,
  ): void;
  /** The app's Node HTTP(S) server (created with the application, before modules are configured). */
  getHttpServer?(): unknown;
}
