/**
 * A `Host` that browsers treat as a secure context over plain HTTP (localhost, `*.localhost`, 127.0.0.0/8, `[::1]`):
 * they accept Secure cookies from it. Unknown (no header) counts as loopback: nothing to warn about for sure.
 */
export function isLoopbackHost(host: string | undefined): boolean {
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
