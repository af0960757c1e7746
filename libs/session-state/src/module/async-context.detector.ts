import type { ModulesContainer } from '@nestjs/core';

/** Nest's metadata keys (values of its PARAMTYPES/SELF_DECLARED_DEPS/PROPERTY_DEPS constants). */
const PARAMTYPES = 'design:paramtypes';
const SELF_DECLARED_DEPS = 'self:paramtypes';
const PROPERTY_DEPS = 'self:properties_metadata';

type Token = unknown;

/** `forwardRef(() => X)` tokens resolved to X. */
function unwrap(token: Token): Token {
  if (token && typeof token === 'object' && 'forwardRef' in token) {
    const ref = (token as { forwardRef: unknown }).forwardRef;
    if (typeof ref === 'function') return (ref as () => Token)();
  }
  return token;
}

/** The tokens a class or factory provider asks Nest to inject (constructor, @Inject, properties). */
function dependenciesOf(wrapper: { metatype?: unknown; inject?: readonly unknown[] | null }): Token[] {
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

/**
 * True when a provider, controller, enhancer (guard, interceptor, pipe, filter) or middleware of the
 * application injects one of `tokens`. Decides whether requests need the AsyncLocalStorage context.
 */
export function injectsAnyOf(modules: ModulesContainer, tokens: readonly Token[]): boolean {
  const wanted = new Set(tokens);
  for (const module of modules.values()) {
    const groups = [module.providers, module.controllers, module.injectables, module.middlewares];
    for (const group of groups) {
      for (const wrapper of group.values()) {
        if (dependenciesOf(wrapper as never).some((token) => wanted.has(token))) return true;
      }
    }
  }
  return false;
}
