/** Doctor's findings: one check, its status, one line of explanation, and the fix. */
export interface Finding {
  check: string;
  status: "ok" | "warn" | "fail" | "skip";
  detail: string;
  fix?: string;
}

export function failed(findings: readonly Finding[]): boolean {
  return findings.some((f) => f.status === "fail");
}

export function formatFindings(findings: readonly Finding[]): string {
  const mark = { ok: "ok  ", warn: "WARN", fail: "FAIL", skip: "skip" } as const;
  const lines = findings.map((f) => `${mark[f.status]} ${f.check}: ${f.detail}${f.fix ? `\n     fix: ${f.fix}` : ""}`);
  const n = (s: Finding["status"]) => findings.filter((f) => f.status === s).length;
  return [...lines, `doctor: ${n("fail")} failed, ${n("warn")} warning(s), ${n("ok")} ok, ${n("skip")} skipped`].join(
    "\n",
  );
}
