import {
  MemorySessionStore,
  type EndedSessionMark,
  type SessionChanges,
  type SessionData,
} from 'nest-session-state';

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

/**
 * The first commit that would write a given value holding `marker` fails (a store that went away for a moment);
 * a later commit of the same value lands. Whatever else the failed commit carried fails with it.
 */
export class CommitsFailingOn extends MemorySessionStore {
  private readonly failed = new Set<string>();

  constructor(private readonly marker: string) {
    super();
  }

  override commit(...args: Parameters<MemorySessionStore['commit']>): Promise<void> {
    const decoder = new TextDecoder();
    for (const bytes of args[1].set.values()) {
      const value = decoder.decode(bytes);
      if (!value.includes(this.marker) || this.failed.has(value)) continue;
      this.failed.add(value);
      return Promise.reject(new Error('disk on fire'));
    }
    return super.commit(...args);
  }
}

/** The next `failures` takes (regenerate()'s move) fail without applying: a store that stalled past ioTimeout. */
export class FailingTakeStore extends MemorySessionStore {
  failures = 0;

  override take(sessionKey: string, mark?: EndedSessionMark): Promise<SessionData | undefined> {
    if (this.failures-- > 0) return Promise.reject(new Error('the store did not answer'));
    return super.take(sessionKey, mark);
  }
}
