import { Inject, Injectable } from '@nestjs/common';
import { LazyModuleLoader, ModuleRef, type ModulesContainer } from '@nestjs/core';
import { SessionConfigurationError } from '../errors/configuration.errors.js';

/**
 * Nest's metadata keys (values of its PARAMTYPES/SELF_DECLARED_DEPS/PROPERTY_DEPS constants, which Nest 12
 * keeps in `@nestjs/common/internal`, outside its public API). The one place that reads Nest internals:
 * {@link checkAsyncContextDetection} verifies at startup that they still mean what this file expects.
 */
const PARAMTYPES = 'design:paramtypes';
const SELF_DECLARED_DEPS = 'self:paramtypes';
const PROPERTY_DEPS = 'self:properties_metadata';

type Token = unknown;
type Class = abstract new (...args: never[]) => unknown;

interface Wrapper {
  metatype?: unknown;
  inject?: readonly unknown[] | null;
  instance?: unknown;
}

/**
 * Injecting these means the app can reach any provider without a constructor dependency
 * (`moduleRef.get()`, modules loaded later): the accessors may be among them.
 */
const DYNAMIC_LOOKUP: readonly Token[] = [ModuleRef, LazyModuleLoader];

/** `forwardRef(() => X)` tokens resolved to X. */
function unwrap(token: Token): Token {
  if (token && typeof token === 'object' && 'forwardRef' in token) {
    const ref = token.forwardRef;
    if (typeof ref === 'function') return (ref as () => Token)();
  }
  return token;
}

/** The tokens a class or factory provider asks Nest to inject (constructor, @Inject, properties). */
function dependenciesOf(wrapper: Wrapper): Token[] {
  const found: Token[] = [];
  if (wrapper.inject) {
    for (const entry of wrapper.inject) {
      found.push(entry && typeof entry === 'object' && 'token' in entry ? entry.token : entry);
    }
  }
  const type = wrapper.metatype;
  if (typeof type === 'function') {
    const params = Reflect.getMetadata(PARAMTYPES, type) as Token[] | undefined;
    if (params) found.push(...params);
    const declared = Reflect.getMetadata(SELF_DECLARED_DEPS, type) as { param: Token }[] | undefined;
    if (declared) found.push(...declared.map((d) => d.param));
    const properties = Reflect.getMetadata(PROPERTY_DEPS, type) as { type: Token }[] | undefined;
    if (properties) found.push(...properties.map((p) => p.type));
  }
  return found.map(unwrap);
}

/** A provider that is an accessor under another token (`useClass`, a subclass, or `useValue`). */
function providesAccessor(wrapper: Wrapper, accessors: readonly Class[]): boolean {
  const type = wrapper.metatype;
  return accessors.some(
    (accessor) =>
      (typeof type === 'function' && (type === accessor || type.prototype instanceof accessor)) ||
      wrapper.instance instanceof accessor,
  );
}

/**
 * True when the app may use one of the `accessors` from code that has no request object, so
 * requests need the AsyncLocalStorage context: a provider, controller, enhancer (guard,
 * interceptor, pipe, filter) or middleware injects an accessor, provides one under another token,
 * or injects `ModuleRef`/`LazyModuleLoader` (which can fetch one at run time).
 */
export function needsAsyncContext(modules: ModulesContainer, accessors: readonly Class[]): boolean {
  return findAccessorUse(modules, accessors, DYNAMIC_LOOKUP) !== undefined;
}

/**
 * The first provider, controller, enhancer or middleware that injects one of `classes` (an accessor, say) or
 * provides one under another token, described by its name, or undefined. `ModuleRef` and `LazyModuleLoader` do
 * not count: only what certainly reaches one.
 */
export function classInjectedBy(modules: ModulesContainer, classes: readonly Class[]): string | undefined {
  return findAccessorUse(modules, classes, []);
}

function findAccessorUse(
  modules: ModulesContainer,
  accessors: readonly Class[],
  alsoWanted: readonly Token[],
): string | undefined {
  const wanted = new Set<Token>([...accessors, ...alsoWanted]);
  for (const module of modules.values()) {
    const groups = [module.providers, module.controllers, module.injectables, module.middlewares];
    for (const group of groups) {
      for (const [token, wrapper] of group) {
        const w = wrapper as unknown as Wrapper;
        const injected = dependenciesOf(w).find((dependency) => wanted.has(dependency));
        if (injected !== undefined) return `${nameOf(token)} (it injects ${nameOf(injected)})`;
        if (!accessors.includes(token as Class) && providesAccessor(w, accessors)) {
          return `${nameOf(token)} (it provides an accessor)`;
        }
      }
    }
  }
  return undefined;
}

function nameOf(token: Token): string {
  if (typeof token === 'function') return token.name || 'an anonymous class';
  if (typeof token === 'symbol') return token.toString();
  return String(token);
}

/** A token only the probes below inject. */
const PROBE = Symbol('nest-session-state.detection-probe');

@Injectable()
class ConstructorProbe {
  constructor(@Inject(PROBE) readonly probe: unknown) {}
}

@Injectable()
class PropertyProbe {
  @Inject(PROBE) readonly probe: unknown;
}

/**
 * Fails at startup when Nest no longer records `@Inject()` dependencies under the keys this file
 * reads, or when the module container no longer lists providers as it did: the detection would then
 * quietly answer "no accessor" and the accessors would fail during requests.
 * @throws SessionConfigurationError naming the `asyncContext` option that decides without detection.
 */
export function checkAsyncContextDetection(modules: ModulesContainer, registered: Class): void {
  const seesConstructor = dependenciesOf({ metatype: ConstructorProbe }).includes(PROBE);
  const seesProperty = dependenciesOf({ metatype: PropertyProbe }).includes(PROBE);
  const seesModules = [...modules.values()].some((module) => module.providers?.has(registered));
  if (seesConstructor && seesProperty && seesModules) return;
  throw new SessionConfigurationError(
    'SessionModule cannot tell whether this app uses SessionAccessor, TempDataAccessor or ItemsAccessor: ' +
      'this version of Nest records injected dependencies differently than the library expects. Set the option ' +
      'asyncContext: true (the accessors work everywhere) or asyncContext: false (nothing injects them).',
  );
}
