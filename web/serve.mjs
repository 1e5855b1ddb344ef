// Serves the built page (web/www) on 127.0.0.1: `node web/serve.mjs [port]`, or imported by the
// browser test. Static files only, with the MIME types a module script and WebAssembly need.

import { createReadStream, statSync } from "node:fs";
import { createServer } from "node:http";
import { extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("./www/", import.meta.url));
const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".wasm": "application/wasm",
  ".png": "image/png",
};

/** Starts the server on `port` (0: any free one); resolves to the server once it listens. */
export function serve(port = 0) {
  const server = createServer((request, response) => {
    const path = decodeURIComponent(new URL(request.url, "http://localhost").pathname);
    const file = normalize(join(ROOT, path.endsWith("/") ? `${path}index.html` : path));
    let size = -1;
    try {
      const stat = file.startsWith(ROOT) ? statSync(file) : null;
      size = stat?.isFile() ? stat.size : -1;
    } catch {
      size = -1;
    }
    if (request.method !== "GET" || size < 0) {
      response.writeHead(request.method === "GET" ? 404 : 405).end();
      return;
    }
    response.writeHead(200, {
      "Content-Type": TYPES[extname(file)] ?? "application/octet-stream",
      "Content-Length": size,
      "Cache-Control": "no-store",
    });
    createReadStream(file).pipe(response);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve(server));
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const server = await serve(Number(process.argv[2] ?? 8080));
  console.log(`nabla's page: http://127.0.0.1:${server.address().port}/ (Ctrl-C stops)`);
}
