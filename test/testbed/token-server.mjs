// A small token server of the test bed, implementing the Docker registry token
// spec the way GHCR does for the pipeline's purposes: basic credentials in,
// a signed JWT granting some of the requested actions out.
//   rw       gets push,pull      ro    gets pull only (the registry then answers 401 insufficient_scope)
//   blocked  gets 403 (authenticated, not allowed)    wrong password: 401
// Usage: node token-server.mjs <listen ip> <port> <state dir>
import { createHash, createSign, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer } from "node:https";

const [ip, port, state] = process.argv.slice(2);
const users = JSON.parse(readFileSync(`${state}/token-users.json`, "utf8")); // {name: {password, actions}}
const key = readFileSync(`${state}/token-signer.key`, "utf8");
const certDer = readFileSync(`${state}/token-signer.crt`, "utf8").replace(/-----[^-]+-----|\s/g, "");
const b64url = (b) => Buffer.from(b).toString("base64url");

function jwt(claims) {
  const head = b64url(JSON.stringify({ alg: "RS256", typ: "JWT", x5c: [certDer] }));
  const body = b64url(JSON.stringify(claims));
  const sig = createSign("RSA-SHA256").update(`${head}.${body}`).sign(key);
  return `${head}.${body}.${b64url(sig)}`;
}

function answer(res, status, body) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

createServer(
  { key: readFileSync(`${state}/registry.key`), cert: readFileSync(`${state}/registry.crt`) },
  (req, res) => {
    const url = new URL(req.url ?? "/", "https://token");
    if (url.pathname !== "/token") return answer(res, 404, { errors: [{ code: "NOT_FOUND" }] });
    const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? "");
    const [name, password] = basic ? Buffer.from(basic[1], "base64").toString().split(/:(.*)/s) : ["", ""];
    const user = users[name];
    if (basic && (!user || user.password !== password))
      return answer(res, 401, { errors: [{ code: "UNAUTHORIZED", message: "incorrect username or password" }] });
    if (user?.actions === "forbidden") return answer(res, 403, { errors: [{ code: "DENIED", message: "denied" }] });
    const access = url.searchParams.getAll("scope").flatMap((scope) => {
      const [type, repo, wanted] = scope.split(":");
      const allowed = user ? user.actions : [];
      const actions = (wanted ?? "").split(",").filter((a) => allowed.includes(a));
      return type === "repository" && actions.length ? [{ type, name: repo, actions }] : [];
    });
    const now = Math.floor(Date.now() / 1000);
    const token = jwt({
      iss: "vps-testbed-token",
      sub: name || "anonymous",
      aud: url.searchParams.get("service"),
      exp: now + 300,
      nbf: now - 10,
      iat: now,
      jti: randomUUID(),
      access,
    });
    answer(res, 200, { token, access_token: token, expires_in: 300, issued_at: new Date(now * 1000).toISOString() });
  },
).listen(Number(port), ip, () =>
  console.log(`token server on ${ip}:${port} (${createHash("sha256").update(certDer).digest("hex").slice(0, 8)})`),
);
