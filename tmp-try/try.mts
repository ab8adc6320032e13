import { deploy } from "/work/main/.dagger/src/remote/deploy.js";
import { deployRequest, releaseCompose } from "/work/main/test/integration/testbed.js";
await deploy(deployRequest("trial", 18090, { log: console.log, compose: releaseCompose(process.argv[2] as "v1") })).catch((e) => console.log(e.describe ? e.describe() : e));
