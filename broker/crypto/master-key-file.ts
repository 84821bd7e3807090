import { randomBytes } from "node:crypto";
import { chmod, open, readFile, rename, unlink } from "node:fs/promises";
import path from "node:path";

/** Owner read and write only: the key file protects every key the broker stores. */
export const KEY_FILE_MODE = 0o600;

/**
 * Returns the non-empty lines of a key file (one encoded key per line, current first),
 * or undefined when the file does not exist.
 */
export async function readKeyFile(file: string): Promise<string[] | undefined> {
  try {
    const contents = await readFile(file, "utf8");
    return contents
      .split("\n")
      .map((line) => line.trim())
      .filter((line) => line.length > 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      return undefined;
    }
    throw error;
  }
}

/**
 * Creates a key file that must not exist yet. Returns false, writing nothing, when another
 * process created it first, so that the caller reads that file instead of replacing it.
 */
export async function createKeyFile(file: string, encodedKeys: string[]): Promise<boolean> {
  try {
    await writeSynced(file, encodedKeys, "wx");
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") {
      return false;
    }
    throw error;
  }
}

/**
 * Replaces a key file atomically: writes a temporary file with mode 0600 in the same
 * directory, flushes it to disk, then renames it over the old file. A crash leaves
 * either the old or the new file, never a partial one.
 */
export async function replaceKeyFile(file: string, encodedKeys: string[]): Promise<void> {
  const temporary = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString("hex")}.tmp`);
  try {
    await writeSynced(temporary, encodedKeys, "wx");
    await rename(temporary, file);
  } catch (error) {
    await unlink(temporary).catch(() => undefined);
    throw error;
  }
  await syncDirectory(path.dirname(file));
}

async function writeSynced(file: string, encodedKeys: string[], flag: string): Promise<void> {
  const handle = await open(file, flag, KEY_FILE_MODE);
  try {
    await handle.writeFile(`${encodedKeys.join("\n")}\n`, "utf8");
    await handle.sync();
  } finally {
    await handle.close();
  }
  // The mode given to open() is reduced by the umask; chmod sets it exactly.
  await chmod(file, KEY_FILE_MODE);
}

/** Flushes a rename to disk. Some platforms cannot open a directory for sync; the rename still happened there. */
async function syncDirectory(directory: string): Promise<void> {
  try {
    const handle = await open(directory, "r");
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== "EISDIR" && code !== "EINVAL" && code !== "EPERM") {
      throw error;
    }
  }
}
