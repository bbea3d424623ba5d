/**
 * What goes into a trap file the agent creates: the literal `content`, a labelled Secret's value
 * (`contentFrom.secretKeyRef`) or generated decoy credentials (`contentFrom.generate`), and,
 * for a decoy, which decoy a planted file holds.
 *
 * A decoy's id is derived from the new file's identity (src/decoys/decoy_id.ts), so it is made
 * between creating the file and writing it; the file's mtime fraction gets the decoy's mark.
 * A file found at the path is a decoy only when it carries that mark: one that was there before
 * the policy, or that the container replaced, holds no decoy of ours and gets no id.
 *
 * @module
 */
import { DECOY_SECRET_LABEL } from "../api/mod.ts";
import type { NewFile, TrapFileIdentity } from "../containers/mod.ts";
import { DecoyFactory, decoyId, decoyMark, type DecoyPlace } from "../decoys/mod.ts";
import type { TrapTarget } from "./desired.ts";
import type { LabelledSecrets } from "./labelled_secrets.ts";

export { DECOY_SECRET_LABEL };

/** The generated decoy a file holds, as status and alerts report it. */
export interface PlantedDecoy {
  id: string;
  kind: string;
}

/** How to fill one target's file, and how to tell the decoy in a planted one. */
export interface ContentPlan {
  /** The content, or its maker from the new file's identity. */
  content?: string | ((file: NewFile) => string);
  /** The mtime fraction to set on a created file. */
  mark?: (file: NewFile) => number;
  /** The decoy a planted file holds, if any. */
  decoyOf?: (file: TrapFileIdentity) => PlantedDecoy | undefined;
  /** Why the content cannot be made, reported instead of ContentUnavailable. */
  problem?: { reason: string; message: string };
}

/** Options of {@linkcode TrapContent}. */
export interface TrapContentOptions {
  /** The Secrets `secretKeyRef` may name (labelled {@linkcode DECOY_SECRET_LABEL}). */
  secrets?: LabelledSecrets;
  /** Makes generated decoys; one is made when not given. */
  decoys?: DecoyFactory;
}

/** Plans the content of each target's file. */
export class TrapContent {
  readonly #secrets?: LabelledSecrets;
  readonly #decoys: DecoyFactory;

  /** @param options Where Secrets are read and decoys made. */
  constructor(options: TrapContentOptions = {}) {
    this.#secrets = options.secrets;
    this.#decoys = options.decoys ?? new DecoyFactory();
  }

  /** Reads the Secrets this round's targets name (once per round, not per target). */
  async prepare(targets: readonly TrapTarget[]): Promise<void> {
    const names = targets.flatMap((t) => {
      const name = t.trap.contentFrom?.secretKeyRef?.name;
      return name ? [name] : [];
    });
    await this.#secrets?.refresh(names);
  }

  /**
   * The plan of one target's content.
   *
   * @param target The trap and the container it is planted in.
   */
  async plan(target: TrapTarget): Promise<ContentPlan> {
    const source = target.trap.contentFrom;
    if (!source) return { content: target.trap.content };
    if (source.secretKeyRef) return this.#fromSecret(source.secretKeyRef);
    const kind = source.generate!;
    const options = source.options ?? {};
    await this.#decoys.ready(kind);
    const place = (file: NewFile | TrapFileIdentity): DecoyPlace => ({
      policyUid: target.policy.uid,
      trapIndex: target.trapIndex,
      podUid: target.pod.uid,
      containerName: target.container.name,
      dev: file.kernelDev,
      ino: file.ino.toString(),
      btime: file.btime,
    });
    return {
      content: (file) => this.#decoys.make(kind, decoyId(place(file)), options),
      mark: (file) => decoyMark(place(file)),
      decoyOf: (file) =>
        file.created || file.mtimeNsec === decoyMark(place(file))
          ? { id: decoyId(place(file)), kind }
          : undefined,
    };
  }

  #fromSecret(ref: { name: string; key: string }): ContentPlan {
    const read = this.#secrets?.get(ref.name);
    let problem: ContentPlan["problem"];
    if (!this.#secrets) {
      problem = { reason: "SecretUnreadable", message: "this agent reads no Secrets" };
    } else if (!read) {
      problem = { reason: "SecretUnreadable", message: `Secret ${ref.name} was not read yet` };
    } else if (!read.ok) {
      problem = { reason: read.reason, message: read.message };
    } else if (!(ref.key in read.data)) {
      problem = {
        reason: "SecretKeyMissing",
        message: `Secret ${ref.name} has no key "${ref.key}"; it has ${
          Object.keys(read.data).sort().join(", ") || "no keys"
        }`,
      };
    }
    if (problem) {
      const message = problem.message;
      return {
        problem,
        content: () => {
          throw new Error(message);
        },
      };
    }
    return { content: (read as { data: Record<string, string> }).data[ref.key] };
  }
}
