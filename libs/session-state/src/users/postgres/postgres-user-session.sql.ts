import type { PostgresSessionSql } from '../../cache/postgres/postgres-session.sql.js';

/** The statements of the PostgreSQL user index (its table is created with the session table). */
export interface PostgresUserSessionSql {
  /**
   * $1 user, $2 session id, $3 session key, $4 created (epoch ms), $5 metadata (jsonb), $6 deadline (epoch ms, database
   * clock). Replaces the same id's entry; past the deadline (the app answered 503), checked again after waiting for
   * the entry's row lock, it adds nothing and returns no row.
   */
  readonly add: string;
  /**
   * As `add`, with $7 the key a moved session's entry must still record: updates the entry only while it records $7
   * or $3, and never creates one. Returns no row only past the deadline (a row and nothing updated: refused).
   */
  readonly replace: string;
  /**
   * $1 user, $2 now (epoch ms): the user's entries whose session is live and still holds the entry's id,
   * with its expiry (`expires_ms`); the others are deleted by the same statement. (`bind` commits the
   * session before it adds the entry, so a new entry's session is always stored.)
   */
  readonly list: string;
  /** $1 session keys, $2 their ids (base64, as stored): deletes each session while its key holds that id. */
  readonly revokeData: string;
  /**
   * $1 user, $2 session ids, $3 their session keys: deletes those entries, each only while it records its key
   * (a null key: whatever it records). The same id bound again under a new key meanwhile stays.
   */
  readonly remove: string;
}

/** The stored session id field (`\u0000id`, escaped as the session table stores field names). */
const ID = `'\\0id'`;

export function postgresUserSessionSql(sql: PostgresSessionSql): PostgresUserSessionSql {
  const { table, usersTable } = sql;
  return {
    add: `INSERT INTO ${usersTable} AS u (user_id, session_id, session_key, created_at, metadata)
SELECT $1, $2, $3, $4, $5::jsonb WHERE clock_timestamp() <= to_timestamp($6::float8 / 1000)
ON CONFLICT (user_id, session_id) DO UPDATE SET
  session_key = EXCLUDED.session_key, created_at = EXCLUDED.created_at, metadata = EXCLUDED.metadata
  WHERE clock_timestamp() <= to_timestamp($6::float8 / 1000)
RETURNING 1`,
    // An UPDATE, not an upsert: an entry a revocation deletes meanwhile is not created again once its lock is gone.
    replace: `WITH replaced AS (
  UPDATE ${usersTable} u SET session_key = $3, created_at = $4, metadata = $5::jsonb
   WHERE u.user_id = $1 AND u.session_id = $2 AND u.session_key IN ($7, $3)
     AND clock_timestamp() <= to_timestamp($6::float8 / 1000)
  RETURNING 1
)
SELECT 1 WHERE EXISTS (SELECT 1 FROM replaced) OR clock_timestamp() <= to_timestamp($6::float8 / 1000)`,
    list: `WITH entries AS (
  SELECT u.session_id, u.session_key, u.created_at, u.metadata,
         (extract(epoch FROM s.expires_at) * 1000)::float8 AS expires_ms,
         coalesce(convert_from(decode(s.data ->> ${ID}, 'base64'), 'UTF8') = u.session_id, false) AS live
    FROM ${usersTable} u
    LEFT JOIN ${table} s ON s.session_key = u.session_key AND s.expires_at > to_timestamp($2::float8 / 1000)
   WHERE u.user_id = $1
), dropped AS (
  DELETE FROM ${usersTable} d USING entries e
   WHERE d.user_id = $1 AND d.session_id = e.session_id AND d.session_key = e.session_key AND NOT e.live
)
SELECT session_id, session_key, created_at, metadata, expires_ms FROM entries WHERE live`,
    revokeData: `DELETE FROM ${table} s USING unnest($1::text[], $2::text[]) AS r (k, id)
WHERE s.session_key = r.k AND s.data ->> ${ID} = r.id`,
    remove: `DELETE FROM ${usersTable} u USING unnest($2::text[], $3::text[]) AS r (id, k)
WHERE u.user_id = $1 AND u.session_id = r.id AND (r.k IS NULL OR u.session_key = r.k)`,
  };
}
