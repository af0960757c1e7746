/**
 * The SQL of the PostgreSQL session store for one table: the schema (also printed in docs/postgres.md
 * for hand migration) and the statements the store sends. One row per session; its values are a jsonb
 * object of base64 strings, field names escaped by {@link escapeField} (text cannot hold the NUL that
 * starts reserved fields).
 */
export interface PostgresSessionSql {
  /** `"schema"."table"`. */
  readonly table: string;
  /** `"schema"."table_users"`: the sessions bound to users (UserSessions), see users/postgres/. */
  readonly usersTable: string;
  /** `"schema"."table_locks"`: the session locks of `session.lock`, one row per held lock. */
  readonly locksTable: string;
  /**
   * `"schema"."table_ended"`: the ended-session marks (`EndedSessionMark`), one row per key whose session
   * `regenerate()` moved (`m`) or `abandon()` ended (`a`) within the idle timeout, until when (app's clock).
   */
  readonly endedTable: string;
  /** `"schema"."table_commit_v3"`. */
  readonly commitFunction: string;
  /** The commit function's argument types, as `to_regprocedure` and `GRANT EXECUTE` name it. */
  readonly commitFunctionArgs: string;
  /** `"schema"."table_take_v1"`: {@link take}'s statement behind the session's advisory lock (see there). */
  readonly takeFunction: string;
  /** The take function's argument types. */
  readonly takeFunctionArgs: string;
  /** DDL creating whatever is missing (idempotent), in order. */
  readonly createSchema: readonly string[];
  /** Reads a live session: its values and when it expires (epoch ms). */
  readonly load: string;
  /** {@link load} for several sessions at once: $1 keys (text[]), $2 now; one row per live session, with its key. */
  readonly loadMany: string;
  /** Slides a live session's expiry. */
  readonly refresh: string;
  /**
   * Deletes a session: $1 key, $2 until when to keep the abandoned mark `a` (epoch ms; null: no mark), left in the
   * same statement, $3 lock token (`EndedSessionMark.lockToken`; null: none), $4 deadline (epoch ms, database
   * clock; null: none). One row, `held`: false when the token no longer holds the session's lock, `in_time`: false
   * past the deadline; either way nothing was deleted or marked.
   */
  readonly remove: string;
  /**
   * Deletes a session and returns its values when it was live: $1 key, $2 now, $3 until when to keep the moved
   * mark `m` (epoch ms; null: no mark), left in the same statement, $4 lock token (null: none), $5 deadline (epoch
   * ms, database clock; null: none), $6 the refuse window (ms, `EndedSessionMark.refuseIfMovedWithinMs`; null:
   * none). One row: `held` (false when the token no longer holds the session's lock) and `in_time` (false past the
   * deadline), when nothing was taken or marked, the session's `data` and whether it was `live` (null when there
   * was no row), and `moved`: true when there was no session and a move at most $6 ms old (nothing marked).
   * Calls the take function, which takes the session's advisory lock (as the commit function does) before its
   * statement reads anything: a session the commit function started under the key meanwhile (a request that found
   * it empty) is then seen and taken, and a commit that waited for the take sees its mark.
   */
  readonly take: string;
  /** The ended mark of $1: `ending` (`m` moved, `a` abandoned) and `until_ms` (epoch ms, app's clock); no row without one. */
  readonly ending: string;
  /**
   * Calls the commit function: $1 key, $2 now, $3 expiry, $4 deadline, $5 cleared, $6 removed, $7 set, $8 maxKeys,
   * $9 maxSessionBytes, $10 guard (bound session's id), $11 lock token (null: no `session.lock`), $12 the request
   * loaded the session (`SessionChanges.ofStoredSession`: an ended mark turns it away when the row is gone), $13 the
   * refuse window of a session started under a key the request found empty (ms, `SessionChanges.refuseIfMovedWithinMs`;
   * null: none).
   */
  readonly commit: string;
  /**
   * Takes the lock for a token if it is free, expired, or held by the same token (reentrant), until $3 ms from now
   * in the database's clock, unless the database's clock is past $4 (the app's deadline, epoch ms): $1 key,
   * $2 token, $3 ttl ms, $4 deadline. One row when taken, none when another token holds it or too late.
   */
  readonly tryLock: string;
  /** Extends the lock only while $2 still holds it, unexpired: $1 key, $2 token, $3 ttl ms. One row when renewed. */
  readonly renewLock: string;
  /** Deletes the lock only while $2 holds it: $1 key, $2 token. */
  readonly unlock: string;
  /**
   * The common commit (keys set, none removed, no clear) as one plain statement, no function: an upsert that
   * merges with `||` under the row lock ON CONFLICT takes. It applies only when it can tell cheaply that the
   * limits hold (the merged text's length and key count are upper bounds of what the limits count) and the
   * deadline has not passed; otherwise it applies nothing and returns no row, and the commit function decides.
   * $1 key, $2 set (jsonb), $3 now, $4 expiry, $5 deadline (all epoch ms), $6 the set alone is within the limits,
   * $7 keys set, $8 maxSessionBytes, $9 maxKeys. For commits of requests that did not load the session (a new
   * one): it may create the row, and then deletes a stale ended mark of the key in the same statement.
   */
  readonly setOnly: string;
  /**
   * {@link setOnly} for a session the request loaded (`SessionChanges.ofStoredSession`): an UPDATE of the live
   * row only, never an insert, so a session moved or ended meanwhile is not brought back; no row when it applied
   * nothing (no live row, near a limit, late), and the commit function decides (ended marks included).
   * $1 key, $2 set (jsonb), $3 now, $4 expiry, $5 deadline, $6 keys set, $7 maxSessionBytes, $8 maxKeys.
   */
  readonly setExisting: string;
  /**
   * {@link setOnly} for several sessions at once (distinct keys, each set within the limits alone), rows
   * locked in key order: $1 keys, $2 sets (jsonb[]), $3 expiries (float8[]), $4 now, $5 deadline (the
   * earliest of the batch), $6 maxSessionBytes, $7 maxKeys. Returns the keys it applied (with the
   * database's time); the others go to the commit function. Deletes the ended marks of the keys it wrote.
   */
  readonly setOnlyMany: string;
  /**
   * {@link setExisting} for several sessions at once (distinct keys), rows locked in key order: $1 keys, $2 sets
   * (jsonb[]), $3 expiries (float8[]), $4 now, $5 deadline (the earliest of the batch), $6 maxSessionBytes,
   * $7 maxKeys. Returns the keys it applied (with the database's time); the others go to the commit function.
   */
  readonly setExistingMany: string;
  /**
   * Deletes up to $2 sessions expired before $1 (and their user-index rows), up to $2 ended marks expired
   * before $1, and up to $2 locks expired in the database's clock (left by holders that never released them);
   * one row: `deleted`, the number of sessions deleted, and `marks`, the number of marks deleted.
   */
  readonly prune: string;
  /** Whether schema, tables and function exist: one row of booleans. */
  readonly check: string;
}

const quote = (identifier: string) => `"${identifier}"`;

/** Decoded size of a base64 value, without decoding it. */
const b64 = (value: string) =>
  `(length(${value}) / 4 * 3 - (length(${value}) - length(rtrim(${value}, '='))))`;

/** The session id field (`\u0000id`) as {@link escapeField} stores it. */
const ID = `'\\0id'`;

export function postgresSessionSql(schema: string, tableName: string): PostgresSessionSql {
  const table = `${quote(schema)}.${quote(tableName)}`;
  const commitName = `${tableName}_commit_v3`;
  const usersTable = `${quote(schema)}.${quote(`${tableName}_users`)}`;
  const locksTable = `${quote(schema)}.${quote(`${tableName}_locks`)}`;
  const endedTable = `${quote(schema)}.${quote(`${tableName}_ended`)}`;
  const commitFunctionArgs =
    'text, float8, float8, float8, boolean, text[], jsonb, bigint, bigint, text, text, boolean, float8';
  const takeFunction = `${quote(schema)}.${quote(`${tableName}_take_v1`)}`;
  const takeFunctionArgs = 'text, float8, float8, text, float8, float8';
  // One session's commits and takes run one after the other (a new session has no row to lock yet).
  const sessionLock = (key: string) =>
    `pg_advisory_xact_lock(hashtext('${schema}.${tableName}'), hashtext(${key}))`;
  // Lock expiry is judged by the database's clock alone, so instances whose clocks disagree agree on it.
  const lockUntil = (ttl: string) => `clock_timestamp() + ${ttl}::float8 * interval '1 millisecond'`;
  const commitFunction = `${quote(schema)}.${quote(commitName)}`;
  const ms = (param: string) => `to_timestamp(${param}::float8 / 1000)`;
  const epochMs = (column: string) => `(extract(epoch FROM ${column}) * 1000)::float8`;
  const dbNowMs = '(extract(epoch FROM clock_timestamp()) * 1000)::float8';
  // The mark `e` is a move (`m`) at most `within` ms old, judged against `expires` (now + the idle timeout, the
  // until of a mark left now), all epoch ms in the app's clock: what has run of it is `expires` minus its until. Up to
  // `within` ahead counts too (a mover whose clock is ahead, or that read its clock after this one).
  const movedWithin = (now: string, expires: string, within: string) =>
    `e.ending = 'm' AND e.until > ${ms(now)} AND e.until <= ${ms(`(${expires}::float8 + ${within}::float8)`)} AND e.until >= ${ms(`(${expires}::float8 - ${within}::float8)`)}`;
  // Leaves (or renews) an ended mark of `ending` under `key` until `until` (epoch ms; null: none), when `also`.
  const endedMark = (key: string, ending: string, until: string, also: string) =>
    `INSERT INTO ${endedTable} (session_key, ending, until) SELECT ${key}, ${ending}, ${ms(until)} WHERE ${until}::float8 IS NOT NULL AND ${also}
  ON CONFLICT (session_key) DO UPDATE SET ending = EXCLUDED.ending, until = EXCLUDED.until`;
  // session.lock, for take and remove (as the commit function checks it): true when `token` is null, or still holds
  // the lock of `key`, unexpired in the database's clock. FOR SHARE keeps it so until the statement's transaction
  // ends: a request taking the lock over waits, then finds the session gone. Materialized: read once, before the
  // statement deletes or marks anything.
  // And the deadline (epoch ms in the database's clock; null: none), read after any wait for the session's row and
  // the lock row: a take or remove that runs after the app answered 503 does nothing, as a commit (in_time false).
  // The session's row is locked first (as the commit function does, then the lock row): the DELETE would wait for it
  // after the deadline was read, and when its holder changed nothing PostgreSQL does not read it again (a review).
  const lockHeld = (key: string, token: string, deadline: string) => `session_row AS MATERIALIZED (
  SELECT 1 FROM ${table} WHERE session_key = ${key} FOR UPDATE
), held AS MATERIALIZED (
  SELECT ${token}::text IS NULL OR EXISTS (SELECT 1 FROM ${locksTable} WHERE session_key = ${key} AND token = ${token}::text
    AND expires_at > clock_timestamp() FOR SHARE) AS ok
  FROM (SELECT count(*) FROM session_row) AS row_locked
), timely AS MATERIALIZED (
  SELECT ok, ${deadline}::float8 IS NULL OR clock_timestamp() <= ${ms(deadline)} AS in_time FROM held
)`;
  const ifHeld = '(SELECT ok AND in_time FROM timely)';
  // A move refused ($6): the key holds no session and its mark is a move at most $6 ms old (another take's: takes of
  // a key run one after the other, behind the take function's advisory lock); the mark is then not renewed.
  const takeStatement = `WITH ${lockHeld('$1', '$4', '$5')}, taken AS (
  DELETE FROM ${table} WHERE session_key = $1 AND ${ifHeld} RETURNING data, expires_at > ${ms('$2')} AS live
), marked AS (
  INSERT INTO ${endedTable} AS e (session_key, ending, until)
  SELECT $1, 'm', ${ms('$3')} WHERE $3::float8 IS NOT NULL AND ${ifHeld}
  ON CONFLICT (session_key) DO UPDATE SET ending = EXCLUDED.ending, until = EXCLUDED.until
  WHERE $6::float8 IS NULL OR EXISTS (SELECT 1 FROM taken) OR NOT (${movedWithin('$2', '$3', '$6')})
  RETURNING 1
)
SELECT timely.ok AS held, timely.in_time, taken.data, taken.live,
  $6::float8 IS NOT NULL AND $3::float8 IS NOT NULL AND timely.ok AND timely.in_time AND taken.data IS NULL
    AND NOT EXISTS (SELECT 1 FROM marked) AS moved
FROM timely LEFT JOIN taken ON true`;
  const createSchema = [
    ...(schema === 'public' ? [] : [`CREATE SCHEMA IF NOT EXISTS ${quote(schema)}`]),
    `CREATE TABLE IF NOT EXISTS ${table} (
  session_key text PRIMARY KEY,
  data jsonb NOT NULL,
  expires_at timestamptz NOT NULL
) WITH (fillfactor = 90)`,
    `CREATE INDEX IF NOT EXISTS ${quote(`${tableName}_expires_at_idx`)} ON ${table} (expires_at)`,
    `CREATE TABLE IF NOT EXISTS ${usersTable} (
  user_id text NOT NULL,
  session_id text NOT NULL,
  session_key text NOT NULL,
  created_at float8 NOT NULL,
  metadata jsonb NOT NULL,
  PRIMARY KEY (user_id, session_id)
)`,
    `CREATE INDEX IF NOT EXISTS ${quote(`${tableName}_users_session_key_idx`)} ON ${usersTable} (session_key)`,
    `CREATE TABLE IF NOT EXISTS ${locksTable} (
  session_key text PRIMARY KEY,
  token text NOT NULL,
  expires_at timestamptz NOT NULL
)`,
    `CREATE TABLE IF NOT EXISTS ${endedTable} (
  session_key text PRIMARY KEY,
  ending text NOT NULL,
  until timestamptz NOT NULL
)`,
    `CREATE INDEX IF NOT EXISTS ${quote(`${tableName}_ended_until_idx`)} ON ${endedTable} (until)`,
    `CREATE OR REPLACE FUNCTION ${commitFunction}(
  p_key text, p_now_ms float8, p_expires_ms float8, p_deadline_ms float8, p_cleared boolean,
  p_removed text[], p_set jsonb, p_max_keys bigint, p_max_bytes bigint, p_guard text, p_lock_token text,
  p_of_stored boolean, p_refuse_ms float8
) RETURNS float8[] LANGUAGE plpgsql AS $fn$
-- Applies one request's changes to a session (see docs/postgres.md). Returns {status, detail}:
-- 1 applied / 0 too late / 4 the bound session is gone / 5 the session moved / 6 the request's session lock
-- was lost / 7 the session was abandoned (detail: the database's time, epoch ms); 2 over maxKeys / 3 over
-- maxSessionBytes (detail: the count).
DECLARE
  v_old jsonb;
  v_ending text;
  v_base jsonb;
  v_new jsonb;
  v_db_ms float8;
  v_add_keys bigint := 0;
  v_add_bytes bigint := 0;
  v_n bigint;
  v_b bigint;
  v_before bigint;
  v_after bigint;
BEGIN
  -- The tables it writes, locked first, as a plain INSERT or DELETE locks its table when it starts: a lock another
  -- session holds on one (CREATE INDEX's SHARE, say) is waited for here, before the deadline check below. Taken only
  -- by the statement that writes, it would be waited for after the check, and a commit answered 503 would land later.
  LOCK TABLE ${table}, ${endedTable} IN ROW EXCLUSIVE MODE;
  -- Commits and takes of one session run one after the other (a new session has no row to lock yet).
  PERFORM ${sessionLock('p_key')};
  -- FOR UPDATE: a single-statement commit (see setOnly) of this session waits for this call. An expired row not yet
  -- pruned is locked too (and read as no session): every statement locks a key's row before its ended mark.
  SELECT CASE WHEN expires_at > to_timestamp(p_now_ms / 1000) THEN data END INTO v_old
    FROM ${table} WHERE session_key = p_key FOR UPDATE;
  -- session.lock: applies only while the request's token still holds the session's lock, unexpired in the
  -- database's clock. FOR SHARE keeps it so until this transaction ends: a request taking the lock over waits,
  -- then reads this write.
  IF p_lock_token IS NOT NULL THEN
    PERFORM 1 FROM ${locksTable} WHERE session_key = p_key AND token = p_lock_token
      AND expires_at > clock_timestamp() FOR SHARE;
    IF NOT FOUND THEN
      RETURN ARRAY[6, extract(epoch FROM clock_timestamp()) * 1000];
    END IF;
  END IF;
  -- After every lock (the lock row's too, which a renewal can hold): a commit that waited for them past its
  -- deadline applies nothing.
  v_db_ms := extract(epoch FROM clock_timestamp()) * 1000;
  IF v_db_ms > p_deadline_ms THEN
    RETURN ARRAY[0, v_db_ms];
  END IF;
  -- A session the request loaded (p_of_stored) that is gone, with a live ended mark under its key: regenerate()
  -- moved it (5) or abandon() ended it (7) meanwhile. Nothing applies: the old key stays retired. Without a mark
  -- (it expired, or a delta emptied it) the commit applies as usual.
  IF v_old IS NULL AND p_of_stored THEN
    SELECT ending INTO v_ending FROM ${endedTable} WHERE session_key = p_key AND until > to_timestamp(p_now_ms / 1000);
    IF v_ending = 'm' THEN
      RETURN ARRAY[5, v_db_ms];
    ELSIF v_ending = 'a' THEN
      RETURN ARRAY[7, v_db_ms];
    END IF;
  END IF;
  -- A session started under a key the request found empty (p_refuse_ms): regenerate() moved the key's session at
  -- most p_refuse_ms ago (while the request ran, or just before). The browser is getting the new key: nothing applies.
  -- A take that ran meanwhile held the advisory lock until it committed, so its mark is seen here.
  IF v_old IS NULL AND p_refuse_ms IS NOT NULL THEN
    PERFORM 1 FROM ${endedTable} AS e
      WHERE e.session_key = p_key AND ${movedWithin('p_now_ms', 'p_expires_ms', 'p_refuse_ms')};
    IF FOUND THEN
      RETURN ARRAY[5, v_db_ms];
    END IF;
  END IF;
  -- A session bound to a user applies only while it is still the one the request loaded (p_guard: its id,
  -- base64 as stored): once revoked or expired, a request that loaded it cannot bring it back.
  IF p_guard IS NOT NULL AND (v_old ->> ${ID}) IS DISTINCT FROM p_guard THEN
    RETURN ARRAY[4, v_db_ms];
  END IF;
  v_base := CASE WHEN p_cleared THEN NULL ELSE v_old END;
  IF v_base IS NOT NULL THEN
    SELECT count(*) FILTER (WHERE key <> ${ID}), coalesce(sum(octet_length(key) + ${b64('value')}), 0)
      INTO v_n, v_b FROM jsonb_each_text(v_base) WHERE key = ANY (p_removed);
    v_add_keys := -v_n;
    v_add_bytes := -v_b;
  END IF;
  SELECT count(*) FILTER (WHERE v_base ->> key IS NULL AND key <> ${ID}),
         coalesce(sum(CASE WHEN v_base ->> key IS NULL THEN octet_length(key) + ${b64('value')}
                           ELSE ${b64('value')} - ${b64('(v_base ->> key)')} END), 0)
    INTO v_n, v_b FROM jsonb_each_text(p_set);
  v_add_keys := v_add_keys + v_n;
  v_add_bytes := v_add_bytes + v_b;
  IF v_add_keys > 0 OR p_cleared THEN
    SELECT count(*) FILTER (WHERE key <> ${ID}) INTO v_before FROM jsonb_object_keys(coalesce(v_old, '{}')) AS key;
    v_after := CASE WHEN p_cleared THEN v_add_keys ELSE v_before + v_add_keys END;
    IF v_after > p_max_keys AND v_after > v_before THEN
      RETURN ARRAY[2, v_after];
    END IF;
  END IF;
  IF v_add_bytes > 0 THEN
    SELECT coalesce(sum(octet_length(key) + ${b64('value')}), 0) INTO v_before FROM jsonb_each_text(coalesce(v_old, '{}'));
    v_after := CASE WHEN p_cleared THEN v_add_bytes ELSE v_before + v_add_bytes END;
    IF v_after > p_max_bytes AND v_after > v_before THEN
      RETURN ARRAY[3, v_after];
    END IF;
  END IF;
  v_new := (coalesce(v_base, '{}') - p_removed) || p_set;
  IF (v_new - ${ID}) = '{}'::jsonb THEN
    -- With no live row read, only an expired one may go: a live one is a concurrent single-statement commit's.
    DELETE FROM ${table} WHERE session_key = p_key
      AND (v_old IS NOT NULL OR expires_at <= to_timestamp(p_now_ms / 1000));
  ELSE
    -- The expiry moves only when more than a slide step (a twentieth of the idle timeout, at most a minute)
    -- behind: most commits then leave every indexed column alone, and PostgreSQL updates the row in place (HOT).
    INSERT INTO ${table} AS t (session_key, data, expires_at) VALUES (p_key, v_new, to_timestamp(p_expires_ms / 1000))
      ON CONFLICT (session_key) DO UPDATE SET
        -- No live row was read, but one exists now (a concurrent single-statement commit): apply the delta to it.
        data = CASE WHEN v_old IS NULL AND NOT p_cleared AND t.expires_at > to_timestamp(p_now_ms / 1000)
                    THEN (t.data - p_removed) || p_set ELSE EXCLUDED.data END,
        expires_at = CASE WHEN t.expires_at < to_timestamp((p_expires_ms - least(60000, (p_expires_ms - p_now_ms) / 20)) / 1000)
                          THEN EXCLUDED.expires_at ELSE t.expires_at END;
    -- A session made afresh under the key: an ended mark left there earlier must not turn its own requests away.
    -- After the row's write, as every statement locks a key's row before its mark (no deadlock with setOnly).
    IF v_old IS NULL THEN
      DELETE FROM ${endedTable} WHERE session_key = p_key;
    END IF;
  END IF;
  RETURN ARRAY[1, v_db_ms];
END
$fn$`,
    // SQL, not PL/pgSQL: a volatile SQL function reads each statement with a fresh snapshot, so the take's statement,
    // run once the advisory lock is its, sees a session a commit function that held the lock committed meanwhile.
    `CREATE OR REPLACE FUNCTION ${takeFunction}(
  p_key text, p_now_ms float8, p_until_ms float8, p_lock_token text, p_deadline_ms float8, p_refuse_ms float8
) RETURNS TABLE (held boolean, in_time boolean, data jsonb, live boolean, moved boolean) LANGUAGE sql AS $fn$
-- Deletes a session and returns what it held, leaving the moved mark (see docs/postgres.md).
SELECT ${sessionLock('$1')};
${takeStatement}
$fn$`,
  ];
  return {
    table,
    usersTable,
    locksTable,
    endedTable,
    commitFunction,
    commitFunctionArgs,
    takeFunction,
    takeFunctionArgs,
    createSchema,
    load: `SELECT data, (extract(epoch FROM expires_at) * 1000)::float8 AS expires_ms FROM ${table} WHERE session_key = $1 AND expires_at > ${ms('$2')}`,
    loadMany: `SELECT session_key, data, (extract(epoch FROM expires_at) * 1000)::float8 AS expires_ms FROM ${table} WHERE session_key = ANY ($1::text[]) AND expires_at > ${ms('$2')}`,
    // Never earlier: a slide from an instance whose clock is behind the last one's would shorten the session.
    refresh: `UPDATE ${table} SET expires_at = ${ms('$3')} WHERE session_key = $1 AND expires_at > ${ms('$2')} AND expires_at < ${ms('$3')}`,
    // The mark and the delete in one statement (one transaction): a commit that finds the row gone sees the mark.
    remove: `WITH ${lockHeld('$1', '$3', '$4')}, marked AS (${endedMark('$1', "'a'", '$2', ifHeld)}
), gone AS (
  DELETE FROM ${table} WHERE session_key = $1 AND ${ifHeld}
)
SELECT ok AS held, in_time FROM timely`,
    take: `SELECT * FROM ${takeFunction}($1, $2, $3, $4, $5, $6)`,
    ending: `SELECT ending, ${epochMs('until')} AS until_ms FROM ${endedTable} WHERE session_key = $1`,
    commit: `SELECT ${commitFunction}($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) AS reply`,
    // A live lock of another token answers false from a plain read first: the upsert's conflict path would
    // lock that row even when its WHERE is false, so waiters would queue behind each other and the holder's own
    // renewals and commits. The deadline is checked again after any wait for the row, and the expiry counted
    // from then (EXCLUDED's was computed before the wait): a try the app gave up on takes nothing later.
    tryLock: `INSERT INTO ${locksTable} AS l (session_key, token, expires_at)
SELECT $1::text, $2::text, ${lockUntil('$3')}
WHERE clock_timestamp() <= ${ms('$4')}
  AND NOT EXISTS (SELECT 1 FROM ${locksTable} WHERE session_key = $1 AND token <> $2 AND expires_at > clock_timestamp())
ON CONFLICT (session_key) DO UPDATE SET token = EXCLUDED.token, expires_at = ${lockUntil('$3')}
WHERE (l.token = EXCLUDED.token OR l.expires_at <= clock_timestamp()) AND clock_timestamp() <= ${ms('$4')}
RETURNING 1 AS taken`,
    renewLock: `UPDATE ${locksTable} SET expires_at = ${lockUntil('$3')}
WHERE session_key = $1 AND token = $2 AND expires_at > clock_timestamp()
RETURNING 1 AS renewed`,
    unlock: `DELETE FROM ${locksTable} WHERE session_key = $1 AND token = $2`,
    // A new session: a stale ended mark of its key goes with the write (only when the write applied).
    setOnly: `WITH written AS (
INSERT INTO ${table} AS t (session_key, data, expires_at)
SELECT $1, $2::jsonb, ${ms('$4')} WHERE ${dbNowMs} <= $5::float8 AND $6::boolean
ON CONFLICT (session_key) DO UPDATE SET
  data = CASE WHEN t.expires_at > ${ms('$3')} THEN t.data || EXCLUDED.data ELSE EXCLUDED.data END,
  expires_at = CASE WHEN t.expires_at < to_timestamp(($4::float8 - least(60000, ($4::float8 - $3::float8) / 20)) / 1000)
                    THEN EXCLUDED.expires_at ELSE t.expires_at END
WHERE ${dbNowMs} <= $5::float8
  AND octet_length(t.data::text) + octet_length($2::text) <= $8::bigint
  AND (SELECT count(*) FROM jsonb_object_keys(t.data)) + $7::int <= $9::bigint
RETURNING ${dbNowMs} AS db_ms
), unmarked AS (
  DELETE FROM ${endedTable} WHERE session_key = $1 AND EXISTS (SELECT 1 FROM written)
)
SELECT db_ms FROM written`,
    // The row only, never an insert: a session moved or ended since the request loaded it stays gone. The row is
    // locked first and the deadline judged after: a plain UPDATE judges its WHERE before it waits for a row lock and,
    // when the holder changed nothing (a FOR UPDATE that ended without a write), not again after, so a commit held
    // past its deadline (its caller answered 503) would still apply once the lock went (a probe, with an app's pool
    // that sets no statement_timeout).
    setExisting: `WITH locked AS MATERIALIZED (SELECT session_key FROM ${table} WHERE session_key = $1 FOR UPDATE)
UPDATE ${table} AS t SET
  data = t.data || $2::jsonb,
  expires_at = CASE WHEN t.expires_at < to_timestamp(($4::float8 - least(60000, ($4::float8 - $3::float8) / 20)) / 1000)
                    THEN ${ms('$4')} ELSE t.expires_at END
FROM locked
WHERE t.session_key = locked.session_key AND t.expires_at > ${ms('$3')} AND ${dbNowMs} <= $5::float8
  AND octet_length(t.data::text) + octet_length($2::text) <= $7::bigint
  AND (SELECT count(*) FROM jsonb_object_keys(t.data)) + $6::int <= $8::bigint
RETURNING ${dbNowMs} AS db_ms`,
    // Rows locked in key order first (as setOnlyMany's ORDER BY does), so two batches never deadlock.
    setExistingMany: `WITH locked AS MATERIALIZED (
  SELECT session_key FROM ${table} WHERE session_key = ANY ($1::text[]) ORDER BY session_key FOR UPDATE
)
UPDATE ${table} AS t SET
  data = t.data || u.d,
  expires_at = CASE WHEN t.expires_at < to_timestamp((u.e - least(60000, (u.e - $4::float8) / 20)) / 1000)
                    THEN to_timestamp(u.e / 1000) ELSE t.expires_at END
FROM unnest($1::text[], $2::jsonb[], $3::float8[]) AS u (k, d, e), locked
WHERE locked.session_key = u.k AND t.session_key = u.k AND t.expires_at > ${ms('$4')} AND ${dbNowMs} <= $5::float8
  AND octet_length(t.data::text) + octet_length(u.d::text) <= $6::bigint
  AND (SELECT count(*) FROM jsonb_object_keys(t.data)) + (SELECT count(*) FROM jsonb_object_keys(u.d)) <= $7::bigint
RETURNING t.session_key, ${dbNowMs} AS db_ms`,
    // Upper bounds, as in setOnly: jsonb's text of the merged objects, and their key counts.
    setOnlyMany: `WITH written AS (
INSERT INTO ${table} AS t (session_key, data, expires_at)
SELECT u.k, u.d, to_timestamp(u.e / 1000) FROM unnest($1::text[], $2::jsonb[], $3::float8[]) AS u (k, d, e)
WHERE ${dbNowMs} <= $5::float8
ORDER BY u.k
ON CONFLICT (session_key) DO UPDATE SET
  data = CASE WHEN t.expires_at > ${ms('$4')} THEN t.data || EXCLUDED.data ELSE EXCLUDED.data END,
  expires_at = CASE WHEN t.expires_at < to_timestamp((${epochMs('EXCLUDED.expires_at')} - least(60000, (${epochMs('EXCLUDED.expires_at')} - $4::float8) / 20)) / 1000)
                    THEN EXCLUDED.expires_at ELSE t.expires_at END
WHERE ${dbNowMs} <= $5::float8
  AND octet_length(t.data::text) + octet_length(EXCLUDED.data::text) <= $6::bigint
  AND (SELECT count(*) FROM jsonb_object_keys(t.data)) + (SELECT count(*) FROM jsonb_object_keys(EXCLUDED.data)) <= $7::bigint
RETURNING t.session_key, ${dbNowMs} AS db_ms
), unmarked AS (
  DELETE FROM ${endedTable} e USING written WHERE e.session_key = written.session_key
)
SELECT session_key, db_ms FROM written`,
    prune: `WITH gone AS (
  DELETE FROM ${table} WHERE session_key IN (
    SELECT session_key FROM ${table} WHERE expires_at <= ${ms('$1')} ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)
  RETURNING session_key
), unbound AS (
  DELETE FROM ${usersTable} u USING gone WHERE u.session_key = gone.session_key
), unlocked AS (
  DELETE FROM ${locksTable} WHERE session_key IN (
    SELECT session_key FROM ${locksTable} WHERE expires_at <= clock_timestamp() LIMIT $2 FOR UPDATE SKIP LOCKED)
), unmarked AS (
  -- Ended marks, in the app's clock as sessions (a mark lasts the idle timeout of the session it replaced).
  DELETE FROM ${endedTable} WHERE session_key IN (
    SELECT session_key FROM ${endedTable} WHERE until <= ${ms('$1')} ORDER BY until LIMIT $2 FOR UPDATE SKIP LOCKED)
  RETURNING 1
)
SELECT count(*)::int AS deleted, (SELECT count(*)::int FROM unmarked) AS marks FROM gone`,
    // Quoted as created: unquoted, PostgreSQL would fold a mixed-case name to lower case and miss it.
    check: `SELECT to_regclass('${table}') IS NOT NULL AS has_table,
  to_regclass('${usersTable}') IS NOT NULL AS has_users_table,
  to_regclass('${locksTable}') IS NOT NULL AS has_locks_table,
  to_regclass('${endedTable}') IS NOT NULL AS has_ended_table,
  to_regprocedure('${commitFunction}(${commitFunctionArgs})') IS NOT NULL AS has_function,
  to_regprocedure('${takeFunction}(${takeFunctionArgs})') IS NOT NULL AS has_take_function,
  to_regnamespace('${quote(schema)}') IS NOT NULL AS has_schema`,
  };
}

/** The table privileges the store needs, on every one of its tables. */
const TABLE_PRIVILEGES = ['SELECT', 'INSERT', 'UPDATE', 'DELETE'] as const;

/**
 * Privileges the store needs, checked once tables and functions exist: one row, `missing` the table privileges the
 * user lacks as `PRIVILEGE table` texts (empty when none), `functions` the functions it may not run (empty when none).
 */
export function privilegesSql(sql: PostgresSessionSql): string {
  const literal = (text: string) => `'${text.replace(/'/g, "''")}'`;
  // One call per privilege: with a list, has_table_privilege is true when any one of them is held.
  const lacking = [sql.table, sql.usersTable, sql.locksTable, sql.endedTable].flatMap((table) =>
    TABLE_PRIVILEGES.map(
      (privilege) =>
        `CASE WHEN has_table_privilege(${literal(table)}, '${privilege}') THEN NULL ELSE ${literal(`${privilege} ${table}`)} END`,
    ),
  );
  const functions = [
    [sql.commitFunction, sql.commitFunctionArgs],
    [sql.takeFunction, sql.takeFunctionArgs],
  ].map(
    ([name, args]) =>
      `CASE WHEN has_function_privilege(${literal(`${name}(${args})`)}, 'EXECUTE') THEN NULL ELSE ${literal(name)} END`,
  );
  return `SELECT array_remove(ARRAY[${lacking.join(', ')}]::text[], NULL) AS missing,
  array_remove(ARRAY[${functions.join(', ')}]::text[], NULL) AS functions`;
}

/** A field name as stored: text cannot hold NUL, so `\` becomes `\\` and NUL `\0`. */
export function escapeField(field: string): string {
  if (!field.includes('\u0000') && !field.includes('\\')) return field;
  return field.replace(/\\/g, '\\\\').replace(/\u0000/g, '\\0');
}

/** The inverse of {@link escapeField}. */
export function unescapeField(stored: string): string {
  if (!stored.includes('\\')) return stored;
  return stored.replace(/\\(\\|0)/g, (_, c: string) => (c === '0' ? '\u0000' : '\\'));
}
