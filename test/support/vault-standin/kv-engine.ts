import { badRequest, type HandlerResult, noHandler, notFound, type StandinClock, type StandinRequest } from "./standin-types.js";

/**
 * A KV version 2 engine at one mount, after https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2:
 * data (read a version, write with check-and-set), delete, undelete, destroy and metadata
 * (read, list, delete). A missing key is 404 `{"errors": []}`; a deleted or destroyed
 * version is 404 with the full body and `data.data` null.
 */
interface KvVersion {
  data: Record<string, unknown> | null;
  createdTime: Date;
  deletionTime: Date | null;
  destroyed: boolean;
}

interface KvEntry {
  versions: Map<number, KvVersion>;
  currentVersion: number;
  createdTime: Date;
  updatedTime: Date;
}

const CAS_MISMATCH = "check-and-set parameter did not match the current version";

export class KvEngine {
  private readonly entries = new Map<string, KvEntry>();

  constructor(
    readonly mount: string,
    private readonly clock: StandinClock,
  ) {}

  /** Writes a version directly, as a test's setup would with `vault kv put`. */
  put(path: string, data: Record<string, unknown>): number {
    return this.write(path, data, undefined);
  }

  /** Soft-deletes versions, as POST <mount>/delete/<path> does. */
  softDelete(path: string, versions: number[]): void {
    for (const number of versions) {
      const version = this.entries.get(path)?.versions.get(number);
      if (version) version.deletionTime = this.clock.now();
    }
  }

  currentVersion(path: string): number {
    return this.entries.get(path)?.currentVersion ?? 0;
  }

  readData(path: string, version?: number): Record<string, unknown> | null {
    const entry = this.entries.get(path);
    return entry?.versions.get(version ?? entry.currentVersion)?.data ?? null;
  }

  /** Routes `<mount>/<operation>/<path>`; anything else on the mount gets "no handler". */
  handle(request: StandinRequest, rest: string): HandlerResult {
    const slash = rest.indexOf("/");
    const operation = slash < 0 ? rest : rest.slice(0, slash);
    const path = slash < 0 ? "" : rest.slice(slash + 1);
    if (operation === "data" && path !== "") return this.handleData(request, path);
    if (operation === "metadata") return this.handleMetadata(request, path);
    if (operation === "delete" && path !== "") return this.changeVersions(request, path, (version) => (version.deletionTime = this.clock.now()));
    if (operation === "undelete" && path !== "") return this.changeVersions(request, path, (version) => (version.deletionTime = null));
    if (operation === "destroy" && path !== "") return this.changeVersions(request, path, destroy);
    throw noHandler(request.path);
  }

  private handleData(request: StandinRequest, path: string): HandlerResult {
    if (request.method === "GET") return this.read(path, request.query.get("version"));
    if (request.method === "POST" || request.method === "PUT") return this.writeRequest(path, request.body);
    if (request.method === "DELETE") {
      const entry = this.entries.get(path);
      const latest = entry?.versions.get(entry.currentVersion);
      if (latest) latest.deletionTime = this.clock.now();
      return undefined;
    }
    throw new Error(`unsupported method ${request.method}`);
  }

  private read(path: string, versionParameter: string | null): HandlerResult {
    const entry = this.entries.get(path);
    const number = versionParameter === null || versionParameter === "0" ? entry?.currentVersion : Number(versionParameter);
    const version = number === undefined ? undefined : entry?.versions.get(number);
    if (!entry || !version || number === undefined) {
      throw notFound();
    }
    const metadata = versionMetadata(number, version);
    if (version.deletionTime !== null || version.destroyed) {
      // Vault sends the whole body with the 404, so that a client can tell a deleted version from a missing key.
      return { status: 404, body: { data: { data: null, metadata } } };
    }
    return { body: { data: { data: version.data, metadata } } };
  }

  private writeRequest(path: string, body: Record<string, unknown>): HandlerResult {
    const data = body["data"];
    if (typeof data !== "object" || data === null || Array.isArray(data)) {
      throw badRequest("no data provided");
    }
    const options = (body["options"] ?? {}) as Record<string, unknown>;
    const cas = options["cas"];
    const version = this.write(path, data as Record<string, unknown>, typeof cas === "number" ? cas : undefined);
    return { body: { data: versionMetadata(version, this.entries.get(path)!.versions.get(version)!) } };
  }

  private write(path: string, data: Record<string, unknown>, cas: number | undefined): number {
    const now = this.clock.now();
    const entry = this.entries.get(path) ?? { versions: new Map(), currentVersion: 0, createdTime: now, updatedTime: now };
    if (cas !== undefined && cas !== entry.currentVersion) {
      throw badRequest(CAS_MISMATCH);
    }
    entry.currentVersion += 1;
    entry.updatedTime = now;
    entry.versions.set(entry.currentVersion, { data: { ...data }, createdTime: now, deletionTime: null, destroyed: false });
    this.entries.set(path, entry);
    return entry.currentVersion;
  }

  private handleMetadata(request: StandinRequest, path: string): HandlerResult {
    if (request.method === "LIST") return this.list(path);
    const entry = this.entries.get(path);
    if (request.method === "DELETE") {
      this.entries.delete(path);
      return undefined;
    }
    if (!entry) {
      throw notFound();
    }
    const versions = Object.fromEntries([...entry.versions].map(([number, version]) => [String(number), versionMetadata(number, version)]));
    const data = {
      cas_required: false,
      created_time: entry.createdTime.toISOString(),
      current_version: entry.currentVersion,
      max_versions: 0,
      oldest_version: 0,
      updated_time: entry.updatedTime.toISOString(),
      custom_metadata: null,
      versions,
    };
    return { body: { data } };
  }

  /** LIST metadata/<folder>: the keys one level below, folders with a trailing slash; 404 when there are none. */
  private list(folder: string): HandlerResult {
    const prefix = folder === "" || folder.endsWith("/") ? folder : `${folder}/`;
    const keys = new Set<string>();
    for (const path of this.entries.keys()) {
      if (!path.startsWith(prefix)) continue;
      const rest = path.slice(prefix.length);
      const slash = rest.indexOf("/");
      keys.add(slash < 0 ? rest : rest.slice(0, slash + 1));
    }
    if (keys.size === 0) {
      throw notFound();
    }
    return { body: { data: { keys: [...keys].sort() } } };
  }

  private changeVersions(request: StandinRequest, path: string, change: (version: KvVersion) => void): HandlerResult {
    const numbers = request.body["versions"];
    if (!Array.isArray(numbers) || numbers.length === 0) {
      throw badRequest("no versions provided");
    }
    const entry = this.entries.get(path);
    for (const number of numbers) {
      const version = entry?.versions.get(Number(number));
      if (version) change(version);
    }
    return undefined;
  }
}

function destroy(version: KvVersion): void {
  version.destroyed = true;
  version.data = null;
}

function versionMetadata(number: number, version: KvVersion) {
  return {
    created_time: version.createdTime.toISOString(),
    custom_metadata: null,
    deletion_time: version.deletionTime?.toISOString() ?? "",
    destroyed: version.destroyed,
    version: number,
  };
}
