// HTTP prober for the downtime benchmark: GET `url` every 1000/rate ms for at
// most `seconds` (or until SIGTERM), then print {sent, failed, retried,
// longestGapMs, p50Ms, p99Ms} as JSON. One connection per request, every
// failure counted, unless `keepalive`: then a GET whose reused connection is
// reset before any answer is sent once more, as browsers do (counted in
// `retried`; failing again counts as failed).
// Usage: node prober.mjs <url> <rate per second> <seconds> [keepalive]
const [url, rate, seconds, mode] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4]), process.argv[5]];
const keepAlive = mode === "keepalive";
const interval = 1000 / rate;
const end = Date.now() + seconds * 1000;
let sent = 0, failed = 0, retried = 0, lastOk = Date.now(), longestGapMs = 0;
const latencies = [];
const inflight = new Set();
let stopping = false;
process.on("SIGTERM", () => (stopping = true));

const get = () => fetch(url, { signal: AbortSignal.timeout(5000), headers: keepAlive ? {} : { connection: "close" } });
const reset = (e) => /ECONNRESET|UND_ERR_SOCKET|EPIPE/.test(String(e?.cause?.code ?? ""));

function one() {
  sent++;
  const t0 = performance.now();
  const p = get()
    .catch((e) => {
      if (!keepAlive || !reset(e)) throw e;
      retried++;
      return get();
    })
    .then(async (r) => {
      await r.arrayBuffer();
      if (!r.ok) throw new Error(String(r.status));
      latencies.push(performance.now() - t0);
      const now = Date.now();
      longestGapMs = Math.max(longestGapMs, now - lastOk);
      lastOk = now;
    })
    .catch(() => failed++)
    .finally(() => inflight.delete(p));
  inflight.add(p);
}

while (!stopping && Date.now() < end) {
  one();
  await new Promise((r) => setTimeout(r, interval));
}
await Promise.all(inflight);
longestGapMs = Math.max(longestGapMs, Date.now() - lastOk);
latencies.sort((a, b) => a - b);
const pct = (q) => (latencies.length ? Math.round(latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] * 10) / 10 : 0);
console.log(JSON.stringify({ sent, failed, retried, longestGapMs, p50Ms: pct(0.5), p99Ms: pct(0.99) }));
