/**
 * The server-side commands of preview stacks: list a project's previews (what
 * `status` shows and the limits decide on) and remove one with everything it had.
 */
import type { Argv } from "../shell.js";
import {
  PREVIEW_LABEL,
  PREVIEW_MARK_FILE,
  parsePreviews,
  previewMark,
  previewMarkFile,
  previewProject,
  type PreviewInfo,
} from "./preview.js";

/** Exit code of a preview command that found a folder without our mark (nothing was touched). */
export const NOT_MARKED_EXIT = 43;

/** Shell: `$d` carries the mark of preview `$n` of project `$proj`, else skip (`continue`) or fail. */
const MARKED = (onMissing: string) =>
  `[ -f "$d/${PREVIEW_MARK_FILE}" ] && grep -qx "project=$proj" "$d/${PREVIEW_MARK_FILE}" && grep -qx "pr=$n" "$d/${PREVIEW_MARK_FILE}" || ${onMissing}`;

/**
 * Find `dir` is preview `pr`'s folder, or (`create`) make it one: a folder that does not exist is fine (and made,
 * with the mark, when `create`); one that exists without the mark (another project's, a preview made before marks)
 * is refused with NOT_MARKED_EXIT, untouched.
 */
export function markPreview(dir: string, project: string, pr: number, create: boolean): Argv {
  const script = [
    `d=$1 proj=$2 n=$3`,
    `if [ ! -e "$d" ]; then [ "$5" = create ] || exit 0; mkdir -p "$d" && printf '%s' "$4" > "$d/${PREVIEW_MARK_FILE}" && exit 0; fi`,
    MARKED(`exit ${NOT_MARKED_EXIT}`),
  ].join("\n");
  return [
    "sh",
    "-c",
    script,
    "sh",
    dir,
    project,
    String(pr),
    previewMarkFile(project, pr),
    create ? "create" : "check",
  ];
}

/** Exit code of a preview command that found no folder at all (no preview, nothing else either). */
export const NO_PREVIEW_EXIT = 44;

/** Exits NO_PREVIEW_EXIT when there is no `dir`, NOT_MARKED_EXIT unless it is marked as preview `pr` of `project`. */
export function checkPreviewMark(dir: string, project: string, pr: number): Argv {
  return [
    "sh",
    "-c",
    `d=$1 proj=$2 n=$3\n[ -e "$d" ] || exit ${NO_PREVIEW_EXIT}\n${MARKED(`exit ${NOT_MARKED_EXIT}`)}`,
    "sh",
    dir,
    project,
    String(pr),
  ];
}

/**
 * One line per preview folder `<dir>-pr-<n>`: `preview <n> <current release|-> <last deploy, epoch> <url|->`,
 * then `=== df` and docker's disk usage as JSON (the sizes of their containers and volumes).
 */
export function listPreviews(dir: string, project: string): Argv {
  const script = [
    "proj=$2",
    'for d in "$1"-pr-*; do',
    '  [ -d "$d/.releases" ] || continue',
    '  n=${d##*-pr-}; case $n in ""|*[!0-9]*) continue;; esac',
    `  ${MARKED("continue")}`,
    '  c=$(cat "$d/.releases/current" 2>/dev/null); [ -n "$c" ] || c=-',
    '  t=$(stat -c %Y "$d/.releases/history.jsonl" 2>/dev/null || stat -c %Y "$d/.releases")',
    '  u=$(sed -n "s/^VPS_PREVIEW_URL=//p" "$d/.env" 2>/dev/null | head -n 1); [ -n "$u" ] || u=-',
    '  echo "preview $n $c $t $u"',
    "done",
    "echo '=== df'",
    "docker system df -v --format '{{json .}}' 2>/dev/null || true",
  ].join("\n");
  return ["sh", "-c", script, "sh", dir, project];
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
export function removePreview(project: string, dir: string, family: string, pr: number, prodProject: string): Argv {
  const script = [
    "p=$1 d=$2 fam=$3 n=$4 proj=$5",
    MARKED(`exit ${NOT_MARKED_EXIT}`),
    // compose's project label and our mark: a project that is merely named like the preview keeps everything
    `f="label=com.docker.compose.project=$p" m="label=${PREVIEW_LABEL}=$6"`,
    'for c in $(docker ps -aq --filter "$f" --filter "$m"); do docker rm -fv "$c" >/dev/null && echo "removed container $c"; done',
    'for x in $(docker network ls -q --filter "$f" --filter "$m"); do docker network rm "$x" >/dev/null && echo "removed network $x"; done',
    'for v in $(docker volume ls -q --filter "$f" --filter "$m"); do docker volume rm "$v" >/dev/null && echo "removed volume $v"; done',
    // what its containers wrote in binds of its folder is theirs (root's, postgres's…): handed back to the deploy user
    // by a throwaway container of one of its own images before they go; until then nothing of the folder goes
    String.raw`images() { for x in "$@"; do [ -f "$x" ] && sed -n 's/^ *image: *["]*\([^"]*\)["]*$/\1/p' "$x"; done; }`,
    'mine=$(images "$d"/.releases/*/docker-compose.yml | sort -u)',
    'if [ -n "$(find "$d" ! -user "$(id -u)" -print 2>/dev/null | head -n 1)" ]; then',
    '  ok=; a=$(cd "$d" && pwd -P); for i in $mine; do docker run --rm --network none --user 0:0 --volume "$a:/p" --entrypoint chown "$i" -Rh "$(id -u):$(id -g)" /p > /dev/null 2>&1 && ok=1 && break; done',
    '  [ -n "$ok" ] || { echo "files its containers wrote in $d are not the deploy user\'s, and none of its images could hand them back (no chown in them)" >&2; exit 1; }',
    "fi",
    // the images of its releases, as compose files name them (`image: repo@sha256:…`): $mine above
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
  return ["sh", "-c", script, "sh", project, dir, family, String(pr), prodProject, previewMark(prodProject, pr)];
}
