/** A registered route as hono lists it in `app.routes`. */
interface RouteEntry {
  method: string;
  path: string;
}

/**
 * Builds a lookup of the methods that the app's routes take on a path. A request with
 * another method then gets 405 and an `Allow` header (RFC 9110 section 15.5.6), because a
 * 404 would suggest that the path does not exist. Middleware (method `ALL`) is left out.
 */
export function allowedMethodsLookup(routes: readonly RouteEntry[]): (path: string) => string[] {
  const byPattern = new Map<string, { pattern: RegExp; methods: Set<string> }>();
  for (const route of routes) {
    if (route.method === "ALL") {
      continue;
    }
    let entry = byPattern.get(route.path);
    if (!entry) {
      entry = { pattern: pathPattern(route.path), methods: new Set() };
      byPattern.set(route.path, entry);
    }
    entry.methods.add(route.method);
  }

  return function allowedMethods(path: string): string[] {
    const methods = new Set<string>();
    for (const { pattern, methods: taken } of byPattern.values()) {
      if (pattern.test(path)) {
        taken.forEach((method) => methods.add(method));
      }
    }
    return [...methods].sort();
  };
}

/** Turns a hono path (`/v1/leases/:id/renew`, `/files/*`) into an anchored regular expression. */
function pathPattern(path: string): RegExp {
  const parts = path.split("/").map((part) => {
    if (part.startsWith(":")) return "[^/]+";
    if (part === "*") return ".*";
    return part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  });
  return new RegExp(`^${parts.join("/")}$`);
}
