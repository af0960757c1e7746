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
  // A parameter given twice counts with its last value, as pg reads it.
  const last = (name: string) => params.getAll(name).at(-1);
  const found: string[] = [];
  if (params.has('ssl')) found.push(`ssl=${last('ssl')}`);
  for (const name of SSL_FILE_OR_MODE) {
    const value = last(name);
    if (value) found.push(name === 'sslmode' ? `sslmode=${value}` : name);
  }
  if (last('sslnegotiation') === 'direct') found.push('sslnegotiation=direct');
  return found;
}

/**
 * Whether the host of `connectionString` (a `host` parameter overrides the URL's, as pg reads it) is an IP address:
 * pg then keeps a `servername` given in `ssl`.
 */
export function connectsByIp(connectionString: string | undefined): boolean {
  if (connectionString === undefined) return false;
  try {
    const url = new URL(connectionString);
    const host = url.searchParams.getAll('host').at(-1) ?? url.hostname;
    return isIP(host.replace(/^\[|\]$/g, '')) !== 0;
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
