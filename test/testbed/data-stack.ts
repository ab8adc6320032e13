/**
 * The data tests' stack, a rendered release: the test bed's PostgreSQL owning
 * `dbdata`, a migration job (psql) per version, and the api (v3 never gets
 * healthy). `data` is the service's data declaration as YAML flow.
 */
import { bed } from "./bed.js";

const PG = `${bed.registry.prefix}/postgres@${bed.images["postgres:15"]}`;
const api = (v: "v1" | "v3") => `${bed.registry.prefix}/api@${bed.images[`api:${v}`]}`;
export const SQL = {
  v1: "create table if not exists prices (day date primary key, usd numeric not null); insert into prices values ('2026-01-01', 2000) on conflict do nothing;",
  v2: "alter table prices add column eur numeric; insert into prices values ('2026-01-02', 2100, 1900);",
  v3: "insert into prices values ('2026-01-03', 2200, 2000);",
  // a migration that makes a table of its own (what a logical rollback must take away again)
  v2t: "create table audit (at timestamptz); insert into prices values ('2026-01-02', 2100);",
} as const;

/** `interval`: the healthchecks' (the test bed's 1 s; "" for Docker's default, 30 s). */
export function dataStack(
  sql: keyof typeof SQL,
  data: string,
  apiVersion: "v1" | "v3" = "v1",
  interval = "1s",
): string {
  return `services:
  db:
    image: ${PG}
    volumes: ["dbdata:/var/lib/postgresql/data"]
    # over TCP: the first start's setup server answers on the Unix socket only, before the stack can reach it
    healthcheck: { test: ["CMD", "pg_isready", "-h", "127.0.0.1", "-U", "postgres", "-d", "gold"]${interval ? `, interval: ${interval}` : ""}, timeout: 2s, retries: 30 }
    x-vps-pipeline:
      data: ${data}
  migrate:
    image: ${PG}
    entrypoint: ["psql", "-h", "db", "-U", "postgres", "-d", "gold", "-q", "-v", "ON_ERROR_STOP=1", "-c", ${JSON.stringify(SQL[sql])}]
    depends_on: { db: { condition: service_healthy } }
    profiles: [vps-pipeline-jobs]
    x-vps-pipeline: { job: true }
  api:
    image: ${api(apiVersion)}
    init: true
    healthcheck: { test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8000/health"]${interval ? `, interval: ${interval}` : ""}, timeout: 2s, retries: 3 }
volumes:
  dbdata: {}
`;
}
