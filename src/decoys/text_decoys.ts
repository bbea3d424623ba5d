/**
 * The decoy kinds that are plain text around random tokens: AWS credentials, `.env`, Docker's
 * `config.json`, `.pgpass`, `.git-credentials` and `.npmrc`. Each puts the decoy id where a
 * stolen credential carries it: in the key id, the user name or the token.
 *
 * @module
 */
import { ALNUM, BASE64, HEX, randomString } from "./_random.ts";

/** Option values by name, as the policy gives them. */
export type DecoyOptions = Readonly<Record<string, string>>;

/**
 * `~/.aws/credentials`: the access key id is `AKIA` and the decoy id (16 characters of A-Z
 * and 2-7, the shape of a real long-term key id), the secret 40 characters of base64.
 */
export function awsCredentials(id: string, options: DecoyOptions): string {
  return [
    `[${options.profile ?? "default"}]`,
    `aws_access_key_id = AKIA${id}`,
    `aws_secret_access_key = ${randomString(BASE64, 40)}`,
    `region = ${options.region ?? "us-east-1"}`,
    "",
  ].join("\n");
}

/** A `.env` file of a web application: database and cache URLs and API secrets. */
export function dotenv(id: string, options: DecoyOptions): string {
  const user = `${options.user ?? "app"}_${id.toLowerCase()}`;
  const host = options.host ?? "db.internal";
  const database = options.database ?? "app";
  return [
    "APP_ENV=production",
    `DATABASE_URL=postgres://${user}:${randomString(ALNUM, 24)}@${host}:5432/${database}`,
    `REDIS_URL=redis://default:${randomString(ALNUM, 24)}@redis.internal:6379/0`,
    `SECRET_KEY_BASE=${randomString(HEX, 64)}`,
    `API_KEY=${randomString(ALNUM, 32)}`,
    `JWT_SECRET=${randomString(ALNUM, 43)}`,
    "",
  ].join("\n");
}

/** Docker's `~/.docker/config.json`: `auths` with a base64 `user:token`, tab-indented as Docker writes it. */
export function dockerConfig(id: string, options: DecoyOptions): string {
  const registry = options.registry ?? "https://index.docker.io/v1/";
  const user = `${options.user ?? "ci"}-${id.toLowerCase()}`;
  const auth = btoa(`${user}:dckr_pat_${randomString(ALNUM, 27)}`);
  return `${JSON.stringify({ auths: { [registry]: { auth } } }, null, "\t")}\n`;
}

/** PostgreSQL's `~/.pgpass`: `host:port:database:user:password`. */
export function pgpass(id: string, options: DecoyOptions): string {
  const user = `${options.user ?? "app"}_${id.toLowerCase()}`;
  const fields = [
    options.host ?? "db.internal",
    options.port ?? "5432",
    options.database ?? "app",
    user,
    randomString(ALNUM, 24),
  ];
  return `${fields.join(":")}\n`;
}

/** git's `~/.git-credentials` (the `store` helper): one URL with user and token. */
export function gitCredentials(id: string, options: DecoyOptions): string {
  const host = options.host ?? "github.com";
  const user = `${options.user ?? "ci-bot"}-${id.toLowerCase()}`;
  const token = host.includes("github") ? `ghp_${randomString(ALNUM, 36)}` : randomString(HEX, 40);
  return `https://${user}:${token}@${host}\n`;
}

/** npm's `~/.npmrc`: an `_authToken` whose first 16 characters after `npm_` are the decoy id. */
export function npmrc(id: string, options: DecoyOptions): string {
  const registry = options.registry ?? "registry.npmjs.org";
  return `//${registry}/:_authToken=npm_${id}${randomString(ALNUM, 20)}\n`;
}
