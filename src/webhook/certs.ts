/**
 * X.509 certificates for the webhooks without cert-manager or an openssl binary: ECDSA P-256
 * keys from WebCrypto and a small DER encoder for the certificate structure (RFC 5280).
 *
 * @module
 */
import {
  bits,
  boolean,
  explicit,
  octets,
  oid,
  pem,
  sequence,
  set,
  time,
  tlv,
  unsigned,
  utf8,
} from "../common/der.ts";

/** A certificate with its private key, both PEM. */
export interface KeyPair {
  /** PEM `CERTIFICATE`. */
  cert: string;
  /** PEM `PRIVATE KEY` (PKCS#8). */
  key: string;
  /** Expiry of the certificate. */
  notAfter: Date;
}

/** Options of {@linkcode createCertificateAuthority} and {@linkcode issueServingCertificate}. */
export interface CertificateOptions {
  /** Validity in days. Default 3650 for a CA, 365 for a serving certificate. */
  days?: number;
  /** Start of validity; default now minus five minutes (clock skew). */
  notBefore?: Date;
}

const OID = {
  ecPublicKey: "1.2.840.10045.2.1",
  prime256v1: "1.2.840.10045.3.1.7",
  ecdsaWithSha256: "1.2.840.10045.4.3.2",
  commonName: "2.5.4.3",
  basicConstraints: "2.5.29.19",
  keyUsage: "2.5.29.15",
  extKeyUsage: "2.5.29.37",
  subjectAltName: "2.5.29.17",
  subjectKeyId: "2.5.29.14",
  authorityKeyId: "2.5.29.35",
  serverAuth: "1.3.6.1.5.5.7.3.1",
};

function name(commonName: string): Uint8Array {
  return sequence(set(sequence(oid(OID.commonName), utf8(commonName))));
}

function extension(id: string, critical: boolean, value: Uint8Array): Uint8Array {
  return critical
    ? sequence(oid(id), boolean(true), octets(value))
    : sequence(oid(id), octets(value));
}

/** Converts WebCrypto's raw r||s ECDSA signature to the DER form X.509 uses. */
function derSignature(raw: Uint8Array): Uint8Array {
  const half = raw.length / 2;
  return sequence(unsigned(raw.subarray(0, half)), unsigned(raw.subarray(half)));
}

function unpem(text: string, label: string): Uint8Array {
  const match = text.match(
    new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`),
  );
  if (!match) throw new SyntaxError(`Cannot read PEM: no "${label}" block found`);
  const binary = atob(match[1].replace(/\s+/g, ""));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

// --- certificates ---------------------------------------------------------------------------

const ALGORITHM = { name: "ECDSA", namedCurve: "P-256" } as const;
const SIGN = { name: "ECDSA", hash: "SHA-256" } as const;

async function subjectPublicKeyInfo(
  key: CryptoKey,
): Promise<{ spki: Uint8Array; keyId: Uint8Array }> {
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", key));
  const raw = new Uint8Array(await crypto.subtle.exportKey("raw", key));
  const keyId = new Uint8Array(await crypto.subtle.digest("SHA-1", raw));
  return { spki, keyId };
}

interface Signer {
  name: string;
  key: CryptoKey;
  keyId: Uint8Array;
}

async function build(
  subject: string,
  publicKey: CryptoKey,
  signer: Signer | undefined,
  privateKey: CryptoKey,
  extensions: Uint8Array[],
  options: CertificateOptions & { days: number },
): Promise<{ der: Uint8Array; notAfter: Date }> {
  const notBefore = options.notBefore ?? new Date(Date.now() - 5 * 60_000);
  const notAfter = new Date(notBefore.getTime() + options.days * 86_400_000);
  const serial = crypto.getRandomValues(new Uint8Array(16));
  serial[0] &= 0x7f;
  const { spki, keyId } = await subjectPublicKeyInfo(publicKey);
  const issuerKeyId = signer?.keyId ?? keyId;
  const tbs = sequence(
    explicit(0, unsigned(Uint8Array.of(2))),
    unsigned(serial),
    sequence(oid(OID.ecdsaWithSha256)),
    name(signer?.name ?? subject),
    sequence(time(notBefore), time(notAfter)),
    name(subject),
    spki,
    explicit(
      3,
      sequence(
        ...extensions,
        extension(OID.subjectKeyId, false, octets(keyId)),
        extension(OID.authorityKeyId, false, sequence(tlv(0x80, issuerKeyId))),
      ),
    ),
  );
  const signature = new Uint8Array(
    await crypto.subtle.sign(SIGN, signer?.key ?? privateKey, tbs as Uint8Array<ArrayBuffer>),
  );
  const der = sequence(tbs, sequence(oid(OID.ecdsaWithSha256)), bits(derSignature(signature)));
  return { der, notAfter };
}

async function exportKey(key: CryptoKey): Promise<string> {
  return pem("PRIVATE KEY", new Uint8Array(await crypto.subtle.exportKey("pkcs8", key)));
}

/**
 * Creates a self-signed certificate authority.
 *
 * @param commonName The CA's name.
 * @param options Validity.
 * @returns The CA certificate and key.
 */
export async function createCertificateAuthority(
  commonName: string,
  options: CertificateOptions = {},
): Promise<KeyPair> {
  const keys = await crypto.subtle.generateKey(ALGORITHM, true, ["sign", "verify"]);
  const { der, notAfter } = await build(commonName, keys.publicKey, undefined, keys.privateKey, [
    extension(OID.basicConstraints, true, sequence(boolean(true))),
    // keyCertSign and cRLSign.
    extension(OID.keyUsage, true, tlv(0x03, Uint8Array.of(1, 0x06))),
  ], { ...options, days: options.days ?? 3650 });
  return { cert: pem("CERTIFICATE", der), key: await exportKey(keys.privateKey), notAfter };
}

/**
 * Issues a TLS server certificate signed by a CA.
 *
 * @param ca The CA from {@linkcode createCertificateAuthority}.
 * @param dnsNames Names the server answers to; the first is also the common name.
 * @param options Validity.
 * @returns The serving certificate and its key.
 */
export async function issueServingCertificate(
  ca: Pick<KeyPair, "cert" | "key">,
  dnsNames: string[],
  options: CertificateOptions & { ipAddresses?: string[] } = {},
): Promise<KeyPair> {
  if (dnsNames.length === 0) throw new RangeError("Cannot issue a certificate without a DNS name");
  const caKey = await crypto.subtle.importKey(
    "pkcs8",
    unpem(ca.key, "PRIVATE KEY") as Uint8Array<ArrayBuffer>,
    ALGORITHM,
    false,
    ["sign"],
  );
  const caDer = unpem(ca.cert, "CERTIFICATE");
  const caPublic = await crypto.subtle.importKey(
    "spki",
    extractSpki(caDer) as Uint8Array<ArrayBuffer>,
    ALGORITHM,
    true,
    ["verify"],
  );
  const { keyId: caKeyId } = await subjectPublicKeyInfo(caPublic);
  const keys = await crypto.subtle.generateKey(ALGORITHM, true, ["sign", "verify"]);
  const altNames = [
    ...dnsNames.map((dns) => tlv(0x82, new TextEncoder().encode(dns))),
    ...(options.ipAddresses ?? []).map((ip) =>
      tlv(0x87, Uint8Array.from(ip.split(".").map(Number)))
    ),
  ];
  const { der, notAfter } = await build(
    dnsNames[0],
    keys.publicKey,
    { name: extractCommonName(caDer), key: caKey, keyId: caKeyId },
    keys.privateKey,
    [
      extension(OID.basicConstraints, true, sequence()),
      // digitalSignature.
      extension(OID.keyUsage, true, tlv(0x03, Uint8Array.of(7, 0x80))),
      extension(OID.extKeyUsage, false, sequence(oid(OID.serverAuth))),
      extension(OID.subjectAltName, false, sequence(...altNames)),
    ],
    { ...options, days: options.days ?? 365 },
  );
  return { cert: pem("CERTIFICATE", der), key: await exportKey(keys.privateKey), notAfter };
}

// --- reading back what we wrote -------------------------------------------------------------

/** Reads one TLV at `offset`: tag, start of content, end of content. */
function readTlv(der: Uint8Array, offset: number): { tag: number; start: number; end: number } {
  const tag = der[offset];
  let len = der[offset + 1];
  let start = offset + 2;
  if (len & 0x80) {
    const count = len & 0x7f;
    len = 0;
    for (let i = 0; i < count; i++) len = len * 256 + der[start + i];
    start += count;
  }
  return { tag, start, end: start + len };
}

/** The children of the TBSCertificate of a certificate. */
function tbsFields(der: Uint8Array): { start: number; end: number; tag: number }[] {
  const cert = readTlv(der, 0);
  const tbs = readTlv(der, cert.start);
  const fields = [];
  for (let offset = tbs.start; offset < tbs.end;) {
    const field = readTlv(der, offset);
    fields.push({ ...field, start: offset });
    offset = field.end;
  }
  return fields;
}

function extractSpki(der: Uint8Array): Uint8Array {
  const field = tbsFields(der)[6];
  return der.slice(field.start, field.end);
}

function extractCommonName(der: Uint8Array): string {
  const subject = tbsFields(der)[5];
  const text = new TextDecoder().decode(der.slice(subject.start, subject.end));
  // Our names hold a single UTF8String; take what follows the commonName OID.
  const inner = readTlv(der, subject.start);
  const rdn = readTlv(der, inner.start);
  const attribute = readTlv(der, rdn.start);
  const id = readTlv(der, attribute.start);
  const value = readTlv(der, id.end);
  return value.end <= subject.end
    ? new TextDecoder().decode(der.slice(value.start, value.end))
    : text;
}

/**
 * Reads the expiry of a PEM certificate.
 *
 * @param certPem The certificate.
 * @returns Its notAfter time.
 */
export function certificateExpiry(certPem: string): Date {
  const der = unpem(certPem, "CERTIFICATE");
  const validity = tbsFields(der)[4];
  const notBefore = readTlv(der, readTlv(der, validity.start).start);
  const notAfter = readTlv(der, notBefore.end);
  const text = new TextDecoder().decode(der.slice(notAfter.start, notAfter.end));
  const full = notAfter.tag === 0x17
    ? `${Number(text.slice(0, 2)) < 50 ? "20" : "19"}${text}`
    : text;
  return new Date(
    `${full.slice(0, 4)}-${full.slice(4, 6)}-${full.slice(6, 8)}T${full.slice(8, 10)}:${
      full.slice(10, 12)
    }:${full.slice(12, 14)}Z`,
  );
}
