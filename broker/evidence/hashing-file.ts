import { createHash } from "node:crypto";
import { createWriteStream, type WriteStream } from "node:fs";
import { once } from "node:events";

/** A file in the evidence directory, with its SHA-256 and size. */
export interface WrittenFile {
  path: string;
  sha256: string;
  bytes: number;
}

/**
 * Writes a file chunk by chunk while hashing it, waiting on the stream's backpressure so
 * that memory stays flat whatever the file's size.
 */
export class HashingFile {
  private readonly stream: WriteStream;
  private readonly hash = createHash("sha256");
  private bytes = 0;

  constructor(
    private readonly name: string,
    fullPath: string,
  ) {
    this.stream = createWriteStream(fullPath, { mode: 0o600 });
  }

  async write(chunk: string): Promise<void> {
    const buffer = Buffer.from(chunk, "utf8");
    this.hash.update(buffer);
    this.bytes += buffer.length;
    if (!this.stream.write(buffer)) {
      await once(this.stream, "drain");
    }
  }

  async close(): Promise<WrittenFile> {
    this.stream.end();
    await once(this.stream, "finish");
    return { path: this.name, sha256: this.hash.digest("hex"), bytes: this.bytes };
  }
}
