import {
  SessionLimitExceededError,
  SessionMovedError,
  SessionLockLostError,
  SessionLockTimeoutError,
  SessionUnavailableError,
} from '../errors/session.errors.js';
import { RedisOperationError } from '../cache/redis/redis-cache.errors.js';
import { sessionFailureType } from './session-failure.type.js';

const refused = () =>
  Object.assign(new Error('connect ECONNREFUSED 10.0.0.5:6379'), { code: 'ECONNREFUSED' });

describe('sessionFailureType (the error.type attribute)', () => {
  it('finds the reason through the causes the session wraps it in', () => {
    const wrapped = new SessionUnavailableError(
      'load',
      new RedisOperationError('Redis operation SESSION LOAD failed', 'SESSION LOAD', { cause: refused() }),
    );
    expect(sessionFailureType(wrapped)).toBe('ECONNREFUSED');
    expect(sessionFailureType(new SessionUnavailableError('lock', new SessionLockTimeoutError(100)))).toBe(
      'lock_timeout',
    );
    expect(sessionFailureType(new SessionLimitExceededError('maxKeys', '3 keys.'))).toBe('limit_exceeded');
    expect(sessionFailureType(new SessionMovedError())).toBe('session_moved');
    expect(sessionFailureType(new SessionLockLostError())).toBe('lock_lost');
    expect(
      sessionFailureType(
        new SessionUnavailableError(
          'commit',
          new RedisOperationError(
            'Redis operation SESSION COMMIT timed out after operationTimeoutInMilliseconds=250',
            'SESSION COMMIT',
          ),
        ),
      ),
    ).toBe('timeout');
    expect(sessionFailureType(new Error('session store did not answer within ioTimeout=60000 ms'))).toBe(
      'timeout',
    );
    // PostgreSQL's statement_timeout (the operation timeout) cancelled the statement before the client's timer fired.
    const cancelled = (why: string) =>
      new SessionUnavailableError(
        'commit',
        Object.assign(new Error(`canceling statement due to ${why}`), { code: '57014' }),
      );
    expect(sessionFailureType(cancelled('statement timeout'))).toBe('timeout');
    expect(sessionFailureType(cancelled('user request'))).toBe('unavailable');
  });

  it('never returns a message (it may name hosts): unknown failures are "unavailable"', () => {
    expect(
      sessionFailureType(new Error("Stream isn't writeable and enableOfflineQueue options is false")),
    ).toBe('unavailable');
    expect(sessionFailureType(Object.assign(new Error('x'), { code: 'not an errno: 10.0.0.5' }))).toBe(
      'unavailable',
    );
    expect(sessionFailureType('a string')).toBe('unavailable');
  });
});
