/**
 * The kinds of decoy content a v2alpha1 trap can ask the agent to generate
 * (`contentFrom.generate`), with the options each kind takes. The generators live in
 * src/decoys/; this table is what the API validates against, so it stays free of crypto.
 *
 * @module
 */

/** Each kind and the option names it accepts, with what each option sets. */
export const DECOY_KINDS = {
  "aws-credentials": {
    profile: "the INI section (default: default)",
    region: "the region line (default: us-east-1)",
  },
  kubeconfig: {
    server: "the API server URL (default: https://10.96.0.1:443)",
    cluster: "the cluster and context name (default: production)",
    user: "the user name, also the certificate's CN before the decoy id (default: deployer)",
    namespace: "the context's namespace (default: default)",
  },
  "ssh-private-key": {
    user: "the key comment's user (default: deploy)",
    host: "the key comment's host (default: bastion)",
  },
  dotenv: {
    host: "the database host (default: db.internal)",
    database: "the database name (default: app)",
    user: "the database user before the decoy id (default: app)",
  },
  "docker-config": {
    registry: "the registry (default: https://index.docker.io/v1/)",
    user: "the registry user before the decoy id (default: ci)",
  },
  "gcp-service-account": {
    project: "the project id (default: prod-platform)",
    account: "the service account name before the decoy id (default: deployer)",
  },
  pgpass: {
    host: "the host (default: db.internal)",
    port: "the port (default: 5432)",
    database: "the database (default: app)",
    user: "the user before the decoy id (default: app)",
  },
  "git-credentials": {
    host: "the git host (default: github.com)",
    user: "the user before the decoy id (default: ci-bot)",
  },
  npmrc: {
    registry: "the registry host (default: registry.npmjs.org)",
  },
} as const satisfies Record<string, Record<string, string>>;

/** A kind of generated decoy. */
export type DecoyKind = keyof typeof DECOY_KINDS;

/** The kinds, in the order the docs list them. */
export const DECOY_KIND_NAMES = Object.keys(DECOY_KINDS) as DecoyKind[];

/**
 * What an option value may hold: no spaces, quotes, newlines or `=`, so that a value cannot
 * add lines, keys or sections to the file it is written into.
 */
export const DECOY_OPTION_PATTERN = "^[A-Za-z0-9._:/@+-]{1,253}$";

/** The option names a kind accepts. */
export function decoyOptionNames(kind: DecoyKind): string[] {
  return Object.keys(DECOY_KINDS[kind]);
}
