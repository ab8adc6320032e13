import { execFileSync } from "node:child_process";
import { caddyConfig } from "./.dagger/src/core/edge/edge.js";
const sh = (c: string) => execFileSync("bash", ["-c", c], { encoding: "utf8" });
const NET = "vps-pipeline-edge-exp";
sh(`docker network create ${NET} >/dev/null 2>&1 || true; docker network connect ${NET} vps-pipeline-edge 2>/dev/null || true; docker rm -f exp-up >/dev/null 2>&1; docker run -d --name exp-up --network ${NET} -e APP_VERSION=v1 $(docker images --format '{{.Repository}}:{{.Tag}}' | grep streams | head -1) >/dev/null`);
const load = (i: number) => {
  const conf = caddyConfig([{ project: "exp", service: `s${i % 2}`, listen: [{ port: 18399 }], upstreams: ["exp-up:8000"] }]);
  execFileSync("docker", ["exec", "-i", "vps-pipeline-edge", "sh", "-c", 'f=$(mktemp); cat > $f; caddy reload --config $f --force 2>/dev/null; rm -f $f'], { input: JSON.stringify(conf) });
};
load(0);
await new Promise((r) => setTimeout(r, 1000));
const host = sh("docker inspect --format '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' vps-pipeline-edge").trim().split(" ")[0];
let sent = 0, failed = 0; const errs: string[] = [];
const timer = setInterval(() => { sent++; fetch(`http://${host}:18399/`, { headers: { connection: "close" }, signal: AbortSignal.timeout(5000) }).then(r => r.text()).catch((e) => { failed++; errs.push(String(e.cause?.code ?? e)); }); }, 5);
for (let i = 1; i <= 30; i++) { load(i); await new Promise((r) => setTimeout(r, 150)); }
await new Promise((r) => setTimeout(r, 1000));
clearInterval(timer);
await new Promise((r) => setTimeout(r, 2000));
console.log({ sent, failed, errs: [...new Set(errs)] });
sh(`docker rm -f exp-up >/dev/null; docker network disconnect -f ${NET} vps-pipeline-edge; docker network rm ${NET} >/dev/null`);
load(0);
