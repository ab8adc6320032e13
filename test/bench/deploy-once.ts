/**
 * One deploy in a process of its own, for the memory benchmark: prints the
 * process's peak RSS. With `--load-only` it loads the same modules and stops,
 * which is the baseline the deploy's own cost is measured against.
 */
import { deploy } from "../../.dagger/src/remote/deploy.js";
import { deployRequest, releaseCompose } from "../testbed/bed.js";

const [project, port, version, mode] = process.argv.slice(2) as [string, string, "v1" | "v2", string | undefined];
if (mode !== "--load-only") await deploy(deployRequest(project, Number(port), { compose: releaseCompose(version), by: "bench" }));
console.log(JSON.stringify({ maxRssKiB: process.resourceUsage().maxRSS }));
