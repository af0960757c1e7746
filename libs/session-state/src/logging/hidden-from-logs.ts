import { inspect, type InspectOptionsStylized } from 'node:util';

/**
 * Class decorator for objects that hold what no log may show: secrets and the keys derived from them, session keys
 * (a cookie's value, a store's key), store credentials, or other objects that do. `util.inspect` (`console.log`,
 * Nest's ConsoleLogger, which prints objects five levels deep) and `JSON.stringify` (JSON loggers) show the class's
 * name and `summary` instead of its fields, so an app that logs a `Session`, a request (which carries its state), an
 * injected store or a `UserSessions` prints none of them.
 * @internal
 */
export function HiddenFromLogs<T extends object>(summary?: (instance: T) => object) {
  return (type: { readonly prototype: T }): void => {
    const shown = function (this: T): object {
      return summary ? summary(this) : {};
    };
    Object.defineProperty(type.prototype, inspect.custom, {
      value(this: T, depth: number, options: InspectOptionsStylized, show: typeof inspect = inspect): string {
        const name = this.constructor.name;
        if (!summary) return `${name} <not shown in logs>`;
        if (depth < 0) return `[${name}]`;
        return `${name} ${show(shown.call(this), { ...options, depth: options.depth == null ? null : depth })}`;
      },
      configurable: true,
      writable: true,
    });
    Object.defineProperty(type.prototype, 'toJSON', { value: shown, configurable: true, writable: true });
  };
}
