import type { Command } from "commander";
import { generateCerts } from "../../protocol/certs.js";
import { intOption, printJson } from "../run.js";

/** `fedjoint certs`: a development CA, a coordinator certificate and one client certificate per site. */
export function registerCerts(program: Command): void {
  program
    .command("certs")
    .description(
      "make a dev CA, a coordinator cert (SAN localhost/127.0.0.1 + --hosts), an operator cert (CN operator) and one cert per site (CN = site)",
    )
    .requiredOption("--out <dir>", "output directory")
    .requiredOption("--sites <list>", "comma-separated site names, e.g. ankle,knee,shoulder")
    .option("--hosts <list>", "extra coordinator host names or IPs for its SAN", "")
    .option("--days <n>", "validity in days", intOption("--days"), 365)
    .option("--reuse-ca", "sign with the existing ca.pem/ca.key in --out")
    .option("--json", "print one JSON line with the file paths")
    .action(
      async (f: {
        out: string;
        sites: string;
        hosts: string;
        days: number;
        reuseCa?: boolean;
        json?: boolean;
      }) => {
        const split = (s: string) =>
          s
            .split(",")
            .map((x) => x.trim())
            .filter((x) => x.length > 0);
        const files = await generateCerts({
          out: f.out,
          sites: split(f.sites),
          hosts: split(f.hosts),
          days: f.days,
          reuseCa: f.reuseCa === true,
        });
        if (f.json) printJson(files);
        else {
          process.stdout.write(
            `CA           ${files.ca}\ncoordinator  ${files.coordinator.cert}\noperator     ${files.operator.cert}\n`,
          );
          for (const [s, e] of Object.entries(files.sites))
            process.stdout.write(`${s.padEnd(12)} ${e.cert}\n`);
        }
      },
    );
}
