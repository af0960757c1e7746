/**
 * A `Host` that browsers treat as a secure context over plain HTTP (localhost, `*.localhost`, 127.0.0.0/8, `[::1]`):
 * they accept Secure cookies from it. Unknown (no header) counts as loopback: nothing to warn about for sure.
 */
function isLoopbackHost(host: string | undefined): boolean {
  if (host === undefined) return true;
  const name = (
    host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.split(':')[0]
  ).toLowerCase();
  return (
    name === 'localhost' ||
    name.endsWith('.localhost') ||
    name === '[::1]' ||
    /^127(\.\d{1,3}){3}$/.test(name)
  );
}

/** The first value of a forwarding header (a proxy chain appends: the first is the client's side), trimmed. */
function firstForwarded(value: string | string[] | undefined): string | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  const first = text?.split(',')[0]?.trim();
  return first === '' ? undefined : first;
}

/**
 * Whether the browser, as far as the request tells, reached the app over plain HTTP at a host that is not loopback
 * (to decide whether a Secure cookie over HTTP is worth a warning; trusted or not, since it decides nothing else):
 * a proxy's `X-Forwarded-Proto: https` says the browser used HTTPS, and its `X-Forwarded-Host` names the host the
 * browser used (a proxy often sends `Host: 127.0.0.1:<port>` to the app).
 */
export function browserOnPlainHttpRemotely(headers: {
  host?: string | undefined;
  'x-forwarded-proto'?: string | string[] | undefined;
  'x-forwarded-host'?: string | string[] | undefined;
}): boolean {
  if (firstForwarded(headers['x-forwarded-proto'])?.toLowerCase() === 'https') return false;
  return !isLoopbackHost(firstForwarded(headers['x-forwarded-host']) ?? headers.host);
}
