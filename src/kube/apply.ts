/**
 * Request options for server-side apply whose body the API server can always read.
 *
 * An apply body is sent as `application/apply-patch+yaml`, and the API server's YAML reader
 * refuses characters YAML does not allow in a stream (DEL, the C1 controls, U+FFFE, U+FFFF; and it turns NEL, U+2028 and U+2029 into spaces)
 * even inside a JSON string: one trap path with a U+007F in it made a node's whole registration
 * write fail ("yaml: control characters are not allowed"). JSON text is also YAML, and YAML's
 * double-quoted strings read `\uXXXX` escapes, so escaping those characters keeps the value
 * exact and the body readable.
 *
 * @module
 */
import {
  type ConfigurationOptions,
  type CoreV1Api,
  type ObservableMiddleware,
  PatchStrategy,
  type RequestContext,
  setHeaderMiddleware,
} from "@kubernetes/client-node";

/**
 * Characters JSON.stringify leaves raw that a YAML reader refuses (DEL, C1, U+FFFE, U+FFFF) or
 * reads as a line break and folds into a space even inside quotes (NEL, U+2028, U+2029).
 */
const NOT_YAML_PRINTABLE = /[\u007f-\u009f\u2028\u2029\ufffe\uffff]/g;

/**
 * Escapes, in JSON text, the characters the API server's YAML reader refuses.
 *
 * @param json Text produced by `JSON.stringify` (raw characters only occur inside strings).
 * @returns The same JSON value, with those characters written as `\uXXXX`.
 */
export function escapeForYamlReader(json: string): string {
  return json.replace(
    NOT_YAML_PRINTABLE,
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/**
 * Options for a client-node patch call that make it a server-side apply with a readable body.
 *
 * @returns Options to pass as the call's second argument.
 */
export function serverSideApplyOptions(): ConfigurationOptions<ObservableMiddleware> {
  const header = setHeaderMiddleware("Content-Type", PatchStrategy.ServerSideApply);
  // Observable middleware, as client-node's own setHeaderOptions builds it.
  const escaping: ObservableMiddleware = {
    pre(request: RequestContext) {
      const body = request.getBody();
      if (typeof body === "string") request.setBody(escapeForYamlReader(body));
      return header.pre(request);
    },
    post: (response) => header.post(response),
  };
  return { middleware: [escaping], middlewareMergeStrategy: "append" };
}

/** What {@linkcode applyConfigMap} writes. */
export interface ConfigMapApply {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  data: Record<string, string>;
  /** The field manager that owns these fields (taken over with force). */
  fieldManager: string;
}

/**
 * Server-side applies a ConfigMap with the given labels and data, taking over its fields.
 *
 * @param core The core API client.
 * @param configMap Name, namespace, labels, data and field manager.
 */
export async function applyConfigMap(core: CoreV1Api, configMap: ConfigMapApply): Promise<void> {
  const { name, namespace, labels, data, fieldManager } = configMap;
  await core.patchNamespacedConfigMap(
    {
      name,
      namespace,
      body: { apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace, labels }, data },
      fieldManager,
      force: true,
    },
    serverSideApplyOptions(),
  );
}
