/**
 * Clients of the streams app (test/fixtures/streams) through the edge: WebSockets and server-sent-event streams
 * that record every tick and the moment they closed, so a test can say which streams something closed.
 */
import { randomBytes } from "node:crypto";
import { request } from "node:http";
import { connect } from "node:net";
import { parseComposeStack, renderRelease } from "../../.dagger/src/core/compose/compose.js";
import { bed } from "./bed.js";

/**
 * The streams app behind the edge as a rendered release: published on `${LIVE_PORT}` (from the .env), or on `host`;
 * `interval` replaces the image's 1 s healthcheck interval (Docker's default is 30s).
 */
export function streamsCompose(v: "v1" | "v2", o: { host?: string; interval?: string } = {}): string {
  const check = o.interval
    ? `    healthcheck:\n      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8000/healthz"]\n      interval: ${o.interval}\n`
    : "";
  return renderRelease(
    parseComposeStack(
      `services:
  live:
    image: ${bed.registry.prefix}/streams@${bed.images[`streams:${v}`]}
    restart: unless-stopped
${o.host ? "" : '    ports: ["${LIVE_PORT}:8000"]\n'}${check}    x-vps-pipeline:
      http: { port: 8000, health: /healthz, drain: 2${o.host ? `, host: ${o.host}` : ""} }
`,
      "docker-compose.prod.yml",
      bed.registry.prefix,
    ),
    {},
  );
}

export interface Stream {
  kind: "ws" | "sse";
  ticks: number;
  /** Date.now() of the last tick. */
  lastTick: number;
  /** The app's version in the last tick. */
  version: string;
  /** Date.now() when the stream ended (from either side), or undefined while it is open. */
  closedAt?: number;
}

export interface Streams {
  all: Stream[];
  /** Streams that ended, or stopped ticking for more than `quietMs`. */
  lost: (quietMs?: number) => Stream[];
  close: () => void;
}

function onTicks(st: Stream, text: string): void {
  for (const m of text.matchAll(/tick (\S+) \d+/g)) {
    st.ticks++;
    st.lastTick = Date.now();
    st.version = m[1]!;
  }
}

function websocket(host: string, port: number, ends: (() => void)[]): Promise<Stream> {
  const st: Stream = { kind: "ws", ticks: 0, lastTick: 0, version: "" };
  return new Promise((resolve, reject) => {
    const sock = connect(port, host);
    ends.push(() => sock.destroy());
    let buf = Buffer.alloc(0);
    let open = false;
    const end = () => {
      st.closedAt ??= Date.now();
      if (!open) reject(new Error(`websocket to ${host}:${port} closed before it opened`));
    };
    sock.on("close", end).on("error", end);
    sock.on("connect", () =>
      sock.write(
        `GET /ws HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      ),
    );
    sock.on("data", (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (!open) {
        const head = buf.indexOf("\r\n\r\n");
        if (head < 0) return;
        const status = buf.subarray(0, buf.indexOf("\r\n")).toString();
        if (!/^HTTP\/1\.1 101/.test(status)) {
          sock.destroy();
          return reject(new Error(`websocket to ${host}:${port}: ${status}`));
        }
        open = true;
        buf = buf.subarray(head + 4);
        resolve(st);
      }
      // the app's frames: unmasked, payload under 126 bytes; opcode 8 is a close
      while (buf.length >= 2 && buf.length >= 2 + (buf[1]! & 0x7f)) {
        const len = buf[1]! & 0x7f;
        if ((buf[0]! & 0x0f) === 8) st.closedAt ??= Date.now();
        else onTicks(st, buf.subarray(2, 2 + len).toString());
        buf = buf.subarray(2 + len);
      }
    });
  });
}

function events(host: string, port: number, ends: (() => void)[]): Promise<Stream> {
  const st: Stream = { kind: "sse", ticks: 0, lastTick: 0, version: "" };
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path: "/sse", headers: { accept: "text/event-stream" } }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        return reject(new Error(`event stream from ${host}:${port}: status ${res.statusCode}`));
      }
      resolve(st);
      res.setEncoding("utf8");
      res.on("data", (t: string) => onTicks(st, t));
      const end = () => (st.closedAt ??= Date.now());
      res.on("end", end).on("close", end).on("error", end);
    });
    req.on("error", (e) => {
      st.closedAt ??= Date.now();
      reject(e);
    });
    ends.push(() => req.destroy());
    req.end();
  });
}

/** Open `ws` WebSockets and `sse` event streams to the app at host:port; resolves once each has its first tick. */
export async function openStreams(host: string, port: number, ws: number, sse: number): Promise<Streams> {
  const ends: (() => void)[] = [];
  const all = await Promise.all([
    ...Array.from({ length: ws }, () => websocket(host, port, ends)),
    ...Array.from({ length: sse }, () => events(host, port, ends)),
  ]);
  for (let i = 0; i < 40 && all.some((s) => s.ticks === 0); i++) await new Promise((r) => setTimeout(r, 100));
  return {
    all,
    lost: (quietMs = 2000) => all.filter((s) => s.closedAt !== undefined || Date.now() - s.lastTick > quietMs),
    close: () => ends.forEach((e) => e()),
  };
}

/** The version the streams app at host:port answers with now ("" when nothing answers). */
async function servedVersion(host: string, port: number): Promise<string> {
  try {
    const r = await fetch(`http://${host}:${port}/`, { signal: AbortSignal.timeout(2000) });
    return (await r.text()).split(" ")[1] ?? "";
  } catch {
    return "";
  }
}

/**
 * Run `rollover` (the app's own deploy to `version`) while watching host:port every 50 ms; then wait up to 4 s for
 * every stream to end. Returns when `version` first answered (0: never) and when each stream ended.
 */
export async function ownRollover(
  streams: Streams,
  host: string,
  port: number,
  version: string,
  rollover: () => Promise<unknown>,
): Promise<{ firstAnswered: number; closedAt: (number | undefined)[] }> {
  let firstAnswered = 0;
  const watch = setInterval(() => {
    void servedVersion(host, port).then((v) => {
      if (v === version && firstAnswered === 0) firstAnswered = Date.now();
    });
  }, 50);
  try {
    await rollover();
    for (let i = 0; i < 40 && streams.all.some((s) => s.closedAt === undefined); i++)
      await new Promise((r) => setTimeout(r, 100));
  } finally {
    clearInterval(watch);
  }
  return { firstAnswered, closedAt: streams.all.map((s) => s.closedAt) };
}
