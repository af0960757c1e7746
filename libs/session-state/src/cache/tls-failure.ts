/** Why a TLS handshake with a store failed, when Node's error says so. */
export type TlsFailure = 'hostname' | 'untrusted' | 'expired';

/** Reads Node's TLS error codes and messages in `text` (what the client reported while connecting). */
export function tlsFailureOf(text: string): TlsFailure | undefined {
  if (/ERR_TLS_CERT_ALTNAME_INVALID|does not match certificate's altnames/i.test(text)) return 'hostname';
  if (/CERT_HAS_EXPIRED|certificate has expired/i.test(text)) return 'expired';
  if (
    /SELF_SIGNED_CERT|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT|self[- ]signed certificate|unable to (verify the first|get local issuer) certificate/i.test(
      text,
    )
  )
    return 'untrusted';
  return undefined;
}

/**
 * What to do about `failure`, `place` naming where the app gives the TLS options (`the ssl option`, say): the
 * handshake failed on the certificate, not on the address or port.
 */
export function tlsFailureAdvice(failure: TlsFailure, place: string): string {
  switch (failure) {
    case 'hostname':
      return (
        'its certificate does not list the host name (or IP address) it was reached by: connect by a name the ' +
        `certificate lists, or give that name as servername in ${place}`
      );
    case 'untrusted':
      return (
        'its certificate is not signed by a CA this process trusts (a private or self-signed CA): give that CA ' +
        `certificate (PEM) as ca in ${place}, or add it to NODE_EXTRA_CA_CERTS`
      );
    case 'expired':
      return "its certificate has expired: renew it on the server (or check this machine's clock)";
  }
}
