/**
 * X.509 v3 certificates signed with ECDSA P-256 (as k3s and many managed clusters issue them):
 * a self-signed CA and client certificates it signs, for decoy kubeconfigs. The keys are fresh
 * and random, so the certificates belong to nothing. Private to src/decoys/.
 *
 * @module
 */
import { generateKeyPairSync, type KeyObject, randomBytes, sign } from "node:crypto";
import {
  bits,
  boolean,
  explicit,
  octets,
  oid,
  pem,
  sequence,
  set,
  small,
  time,
  tlv,
  unsigned,
  utf8,
} from "../common/der.ts";

const ECDSA_WITH_SHA256 = sequence(oid("1.2.840.10045.4.3.2"));
const COMMON_NAME = "2.5.4.3";
const ORGANIZATION = "2.5.4.10";
const DAY_MS = 86_400_000;

/** A key pair and the PEM certificate of its public key. */
export interface IssuedCertificate {
  /** The certificate, PEM. */
  certificatePem: string;
  /** The private key, PEM (SEC 1 `EC PRIVATE KEY`, as kubeconfigs usually carry). */
  keyPem: string;
  /** The private key, to sign further certificates with. */
  key: KeyObject;
  /** The subject, to name as the issuer of certificates this one signs. */
  subject: Uint8Array;
}

/** What a certificate says about its subject. */
export interface CertificateSubject {
  commonName: string;
  organization?: string;
}

function name(subject: CertificateSubject): Uint8Array {
  const attribute = (type: string, value: string) => set(sequence(oid(type), utf8(value)));
  return sequence(
    ...(subject.organization ? [attribute(ORGANIZATION, subject.organization)] : []),
    attribute(COMMON_NAME, subject.commonName),
  );
}

/** A keyUsage BIT STRING of one byte, bits numbered from the top as RFC 5280 does. */
function keyUsage(...bitNumbers: number[]): Uint8Array {
  const byte = bitNumbers.reduce((value, bit) => value | (0x80 >> bit), 0);
  let unused = 0;
  while (unused < 7 && (byte & (1 << unused)) === 0) unused++;
  return tlv(0x03, Uint8Array.of(unused, byte));
}

function extension(id: string, critical: boolean, value: Uint8Array): Uint8Array {
  return sequence(oid(id), ...(critical ? [boolean(true)] : []), octets(value));
}

function serialNumber(): Uint8Array {
  const bytes = new Uint8Array(randomBytes(16));
  bytes[0] &= 0x7f; // positive
  bytes[0] |= 0x01; // and not shortened to fewer than 16 bytes
  return unsigned(bytes);
}

function issue(
  subject: CertificateSubject,
  issuer: { key: KeyObject; subject: Uint8Array } | undefined,
  isCa: boolean,
  validDays: number,
  now: Date,
): IssuedCertificate {
  const pair = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const subjectName = name(subject);
  const spki = new Uint8Array(pair.publicKey.export({ format: "der", type: "spki" }));
  const extensions = isCa
    ? [
      extension("2.5.29.15", true, keyUsage(0, 5, 6)), // digitalSignature, keyCertSign, cRLSign
      extension("2.5.29.19", true, sequence(boolean(true))), // basicConstraints cA
    ]
    : [
      extension("2.5.29.15", true, keyUsage(0, 2)), // digitalSignature, keyEncipherment
      extension("2.5.29.37", false, sequence(oid("1.3.6.1.5.5.7.3.2"))), // clientAuth
      extension("2.5.29.19", true, sequence()), // not a CA
    ];
  // Backdated a little, as real issuers do for clock skew.
  const notBefore = new Date(now.getTime() - 5 * 60_000);
  const notAfter = new Date(now.getTime() + validDays * DAY_MS);
  const tbs = sequence(
    explicit(0, small(2)), // v3
    serialNumber(),
    ECDSA_WITH_SHA256,
    issuer?.subject ?? subjectName,
    sequence(time(notBefore), time(notAfter)),
    subjectName,
    spki,
    explicit(3, sequence(...extensions)),
  );
  const signature = new Uint8Array(sign("sha256", tbs, issuer?.key ?? pair.privateKey));
  const certificate = sequence(tbs, ECDSA_WITH_SHA256, bits(signature));
  return {
    certificatePem: pem("CERTIFICATE", certificate),
    keyPem: String(pair.privateKey.export({ format: "pem", type: "sec1" })),
    key: pair.privateKey,
    subject: subjectName,
  };
}

/**
 * A self-signed CA certificate valid for ten years.
 *
 * @param subject The CA's name, e.g. `{ commonName: "kubernetes" }`.
 * @param now The issue time.
 */
export function selfSignedCa(subject: CertificateSubject, now = new Date()): IssuedCertificate {
  return issue(subject, undefined, true, 3650, now);
}

/**
 * A client-auth certificate signed by `ca`, valid for one year.
 *
 * @param ca The issuing CA.
 * @param subject The client's name: Kubernetes reads the user from CN, groups from O.
 * @param now The issue time.
 */
export function clientCertificate(
  ca: IssuedCertificate,
  subject: CertificateSubject,
  now = new Date(),
): IssuedCertificate {
  return issue(subject, ca, false, 365, now);
}
