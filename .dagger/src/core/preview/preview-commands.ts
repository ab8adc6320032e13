/**
 * The server-side commands of preview stacks: list a project's previews (what
 * `status` shows and the limits decide on) and remove one with everything it had.
 */
import type { Argv } from "../shell.js";
import { parsePreviews, previewProject, type PreviewInfo } from "./preview.js";

/**
 * One line per preview folder `<dir>-pr-<n>`: `preview <n> <current release|-> <last deploy, epoch> <url|->`,
 * then `=== df` and docker's disk usage as JSON (the sizes of their containers and volumes).
 */
export function listPreviews(dir: string): Argv {
  const script = [
    'for d in "$1"-pr-*; do',
    '  [ -d "$d/.releases" ] || continue',
    '  n=${d##*-pr-}; case $n in ""|*[!0-9]*) continue;; esac',
    '  c=$(cat "$d/.releases/current" 2>/dev/null); [ -n "$c" ] || c=-',
    '  t=$(stat -c %Y "$d/.releases/history.jsonl" 2>/dev/null || stat -c %Y "$d/.releases")',
    '  u=$(sed -n "s/^VPS_PREVIEW_URL=//p" "$d/.env" 2>/dev/null | head -n 1); [ -n "$u" ] || u=-',
    '  echo "preview $n $c $t $u"',
    "done",
    "echo '=== df'",
    "docker system df -v --format '{{json .}}' 2>/dev/null || true",
  ].join("\n");
  return ["sh", "-c", script, "sh", dir];
}

/** Docker's sizes (`1.2kB`, `104.9MB`, SI units) in bytes. */
export function dockerSize(s: string): number {
  const m = /^([\d.]+)\s*([kMGTP]?)B$/.exec(s.trim());
  if (!m) return 0;
  return Math.round(Number(m[1]) * 1000 ** " kMGTP".indexOf(m[2] || " "));
}

/** listPreviews' output → the previews of `project`, each with what its containers and volumes take on disk. */
export function previewsFrom(out: string, project: string): PreviewInfo[] {
  const [lines = "", df = ""] = out.split(/^=== df$/m);
  let usage: { Containers?: { Labels?: string; Size?: string }[]; Volumes?: { Labels?: string; Size?: string }[] } = {};
  try {
    usage = JSON.parse(df.trim() || "{}") as typeof usage;
  } catch {
    // sizes are a courtesy: an engine that prints none still lists the previews
  }
  return parsePreviews(lines, project).map((p) => {
    const own = (x: { Labels?: string }) =>
      new RegExp(`(^|,)com\\.docker\\.compose\\.project=${previewProject(project, p.pr)}(,|$)`).test(x.Labels ?? "");
    const bytes = [...(usage.Containers ?? []), ...(usage.Volumes ?? [])]
      .filter(own)
      .reduce((n, x) => n + dockerSize(x.Size ?? ""), 0);
    return { ...p, bytes };
  });
}

/**
 * Remove preview `project` (folder `dir`, beside production's `family` folder): its containers (jobs
 * included), networks and volumes by compose's project label, the images its releases ran that no
 * container and no other release names (the family's: production, the other previews; and every other
 * compose project's on the VPS, found by its containers' working folder), then its folder.
 * Prints `removed <kind> <name>` per thing removed.
 */
export function removePreview(project: string, dir: string, family: string): Argv {
  const script = [
    "p=$1 d=$2 fam=$3",
    'f="label=com.docker.compose.project=$p"',
    'for c in $(docker ps -aq --filter "$f"); do docker rm -f "$c" >/dev/null && echo "removed container $c"; done',
    'for n in $(docker network ls -q --filter "$f"); do docker network rm "$n" >/dev/null && echo "removed network $n"; done',
    'for v in $(docker volume ls -q --filter "$f"); do docker volume rm "$v" >/dev/null && echo "removed volume $v"; done',
    // the images of its releases, as compose files name them (`image: repo@sha256:…`)
    String.raw`images() { for x in "$@"; do [ -f "$x" ] && sed -n 's/^ *image: *["]*\([^"]*\)["]*$/\1/p' "$x"; done; }`,
    'mine=$(images "$d"/.releases/*/docker-compose.yml | sort -u)',
    // every other release on the VPS: the family's folders, and the folder of every compose project that has a
    // container (its working_dir label): a project deploying the same digests has uploaded its release before it pulls
    String.raw`dirs=$(docker ps -a --format '{{.Label "com.docker.compose.project.working_dir"}}' | sort -u)`,
    'others=$(for x in "$fam" "$fam"-pr-* $dirs; do [ "$x" = "$d" ] || images "$x"/.releases/*/docker-compose.yml; done | sort -u)',
    'used=$(docker ps -a --format "{{.Image}}" | sort -u)',
    "for i in $mine; do",
    '  printf "%s\\n" "$others" "$used" | grep -qxF "$i" && continue',
    '  docker image rm "$i" >/dev/null 2>&1 && echo "removed image $i"',
    "done",
    'rm -rf "$d" && echo "removed folder $d"',
  ].join("\n");
  return ["sh", "-c", script, "sh", project, dir, family];
}
