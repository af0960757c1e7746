import { isIP } from 'node:net';

/** Parameters whose non-empty value makes pg take its TLS settings from the connection string. */
const SSL_FILE_OR_MODE = ['sslmode', 'sslrootcert', 'sslcert', 'sslkey'] as const;

/**
 * The TLS parameters of `connectionString` from which pg takes its TLS settings, replacing the `ssl` option whole
 * (pg-connection-string's result is assigned over the config): `ssl` with any value, `sslmode`, `sslrootcert`,
 * `sslcert` or `sslkey` with a value, `sslnegotiation=direct`. As `name=value`.
 */
export function sslParametersOf(connectionString: string | undefined): string[] {
  const params = searchParamsOf(connectionString);
  if (!params) return [];
  const found: string[] = [];
  if (params.has('ssl')) found.push(`ssl=${params.get('ssl')}`);
  for (const name of SSL_FILE_OR_MODE) {
    const value = params.get(name);
    if (value) found.push(name === 'sslmode' ? `sslmode=${value}` : name);
  }
  if (params.get('sslnegotiation') === 'direct') found.push('sslnegotiation=direct');
  return found;
}

/** Whether the host of `connectionString` is an IP address (pg then keeps a `servername` given in `ssl`). */
export function connectsByIp(connectionString: string | undefined): boolean {
  if (connectionString === undefined) return false;
  try {
    return isIP(new URL(connectionString).hostname.replace(/^\[|\]$/g, '')) !== 0;
  } catch {
    return false;
  }
}

function searchParamsOf(connectionString: string | undefined): URLSearchParams | undefined {
  if (connectionString === undefined) return undefined;
  try {
    return new URL(connectionString).searchParams;
  } catch {
    return undefined;
  }
}
