/** The connection string parameters from which pg takes its TLS settings, replacing the `ssl` option whole. */
const SSL_PARAMETERS = ['sslmode', 'sslrootcert', 'sslcert', 'sslkey'] as const;

/**
 * The TLS parameters `connectionString` carries (`?sslmode=require`, say). pg takes its TLS settings from them when
 * there is one and ignores the `ssl` it is given (pg-connection-string's result is assigned over the config).
 */
export function sslParametersOf(connectionString: string | undefined): string[] {
  if (connectionString === undefined) return [];
  let url: URL;
  try {
    url = new URL(connectionString);
  } catch {
    return [];
  }
  return SSL_PARAMETERS.filter((name) => url.searchParams.has(name));
}
