import { MemorySessionStore, type SessionChanges } from 'nest-session-state';

/**
 * Commits that take 150 ms, as a store over the network does: a response that did not wait for them would leave
 * without the cookie. `commits` counts the ones that landed.
 */
export class SlowCommits extends MemorySessionStore {
  commits = 0;

  override async commit(key: string, changes: SessionChanges, idle: number): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, 150));
    await super.commit(key, changes, idle);
    this.commits++;
  }
}

/** Commits that always fail: the response is replaced by the JSON 503. */
export class FailingCommits extends MemorySessionStore {
  override commit(): Promise<void> {
    return Promise.reject(new Error('disk on fire'));
  }
}

/** Commits that fail when they would write a value holding `marker`: whatever else they carry fails with them. */
export class CommitsFailingOn extends MemorySessionStore {
  constructor(private readonly marker: string) {
    super();
  }

  override commit(...args: Parameters<MemorySessionStore['commit']>): Promise<void> {
    const decoder = new TextDecoder();
    for (const value of args[1].set.values())
      if (decoder.decode(value).includes(this.marker)) return Promise.reject(new Error('disk on fire'));
    return super.commit(...args);
  }
}
