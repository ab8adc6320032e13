// HTTP prober for the downtime benchmark: GET `url` every 1000/rate ms for at
// most `seconds`, then print {sent, failed, longestGapMs} as JSON. Stops by itself.
// Usage: node prober.mjs <url> <rate per second> <seconds>
const [url, rate, seconds] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
const interval = 1000 / rate;
const end = Date.now() + seconds * 1000;
let sent = 0, failed = 0, lastOk = Date.now(), longestGapMs = 0;
const inflight = new Set();
let stopping = false;
process.on("SIGTERM", () => (stopping = true));

function one() {
  sent++;
  const p = fetch(url, { signal: AbortSignal.timeout(1000) })
    .then(async (r) => {
      await r.arrayBuffer();
      if (!r.ok) throw new Error(String(r.status));
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
console.log(JSON.stringify({ sent, failed, longestGapMs }));
